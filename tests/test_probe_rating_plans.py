"""Monthly free credit follows the plan on the account's own rate card: a plan of the same name
on another card never sets it, and a new version of the card changes it from its effective
date. Both backends, through the admin API, `talktime cycle run` and the worker's cycle job."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.cli import app
from talktime.config import Settings, get_settings
from talktime.ops import registry, tasks
from talktime.ops.jobs import Job
from talktime.rating import shipped_card_dir
from talktime.store import make_engine
from talktime.store.wallet_tables import grants
from talktime.wallet.periods import to_micros

from apikit import ADMIN, idem, tenant
from ratecards import SHIPPED


def _card(name: str, business: str, version: str = SHIPPED, effective: str = "") -> dict:
    source = shipped_card_dir("default")
    files = {f: (source / f).read_text() for f in ("sms.csv", "voice.csv", "numbers.csv")}
    header = (source / "card.toml").read_text()
    header = header.replace('name = "default"', f'name = "{name}"')
    header = header.replace('business = "10.00"', f'business = "{business}"')
    header = header.replace(f'version = "{SHIPPED}"', f'version = "{version}"')
    if effective:
        header = header.replace("effective_from = 2026-12-01", f"effective_from = {effective}")
    return {**files, "card.toml": header}


def _import(api: Any, body: dict[str, str]) -> None:
    response = api.post("/v1/admin/rate-cards", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text


def _period_end(api: Any, account_id: int) -> datetime:
    account = api.get(f"/v1/admin/accounts/{account_id}", headers=ADMIN).json()
    return datetime.fromisoformat(account["period_end"])


def _free_grants(db_url: str, account_id: int) -> list[int]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(grants.c.original)
                .where(grants.c.account_id == account_id, grants.c.kind == "free_monthly")
                .order_by(grants.c.period_start)
            )
            return [int(r.original) for r in rows]
    finally:
        engine.dispose()


def _run_job(db_url: str, cards_dir: Path, at: datetime, kind: str = "wallet.run_cycle") -> None:
    """The worker's handler of ``kind`` (the cycle, or the expiry job) run once at ``at``."""
    handler = {"wallet.run_cycle": tasks.cycle, "wallet.expire": tasks.expire}[kind]
    settings = Settings(database_url=db_url, rate_cards_dir=str(cards_dir))
    engine = make_engine(db_url, settings)
    try:
        context = registry.JobContext(engine, settings, "probe", lambda: to_micros(at))
        handler(context, Job(1, kind, {}, 1, 3, 0, "probe", 0))
    finally:
        engine.dispose()


def test_a_plan_of_the_same_name_on_another_card_never_sets_an_accounts_free_credit(
    api: Any, cli: Any, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import(api, _card("premium", "20.00"))
    on_default = tenant(api, plan="business", number=None)
    on_premium = tenant(api, plan="business", number=None, rate_card="premium")
    late_default = tenant(api, plan="business", number=None)  # synced default's plans last
    assert _free_grants(db_url, on_default.account_id) == [10_000_000]
    assert _free_grants(db_url, on_premium.account_id) == [20_000_000]
    assert _free_grants(db_url, late_default.account_id) == [10_000_000]

    ids = [on_default.account_id, on_premium.account_id, late_default.account_id]
    at = max(_period_end(api, a) for a in ids) + timedelta(seconds=1)
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", str(tmp_path / "cards"))
    get_settings.cache_clear()
    result = cli.invoke(app, ["cycle", "run", "--now", at.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    granted = {r["account_id"]: r["granted"] for r in json.loads(result.stdout)}
    assert granted == {
        on_default.account_id: "10.0000",
        on_premium.account_id: "20.0000",
        late_default.account_id: "10.0000",
    }


def test_the_worker_grants_the_plan_credit_of_the_card_version_in_force_at_the_period_start(
    api: Any, db_url: str, tmp_path: Path
) -> None:
    account = tenant(api, plan="business", number=None)
    other = tenant(api, plan="business", number=None, rate_card="passthrough")
    end = max(_period_end(api, account.account_id), _period_end(api, other.account_id))
    # default's next version raises business to $12 from the day the next period starts
    _import(api, _card("default", "12.00", version="2099.1", effective=end.date().isoformat()))
    _run_job(db_url, tmp_path / "cards", end + timedelta(seconds=1))
    assert _free_grants(db_url, account.account_id) == [10_000_000, 12_000_000]
    assert _free_grants(db_url, other.account_id) == [10_000_000, 10_000_000]


def test_changing_plan_mid_period_changes_the_free_credit_from_the_next_period_only(
    api: Any, db_url: str, tmp_path: Path
) -> None:
    account = tenant(api, plan="startup", number=None)
    response = api.patch(
        f"/v1/admin/accounts/{account.account_id}",
        json={"plan": "business"},
        headers={**ADMIN, **idem()},
    )
    assert response.status_code == 200, response.text
    assert response.json()["balance"]["free"] == "2.0000"
    _run_job(db_url, tmp_path / "cards", _period_end(api, account.account_id))
    assert _free_grants(db_url, account.account_id) == [2_000_000, 10_000_000]


def test_the_expiry_job_after_a_period_ended_opens_the_next_with_the_accounts_card_credit(
    api: Any, db_url: str, tmp_path: Path
) -> None:
    # the expiry job now opens ended periods before expiring (so the order of the jobs after a
    # restart changes nothing); it must open them as the cycle does, with the account's card's
    # plan credit, not the plans table's (synced last from another card)
    _import(api, _card("premium", "20.00"))
    on_premium = tenant(api, plan="business", number=None, rate_card="premium")
    tenant(api, plan="business", number=None)  # the plans table says $10 again
    at = _period_end(api, on_premium.account_id) + timedelta(seconds=1)
    _run_job(db_url, tmp_path / "cards", at, "wallet.expire")
    assert _free_grants(db_url, on_premium.account_id) == [20_000_000, 20_000_000]
