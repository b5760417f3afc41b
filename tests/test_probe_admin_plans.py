"""A plan changed mid-period gives its free credit from the next period, even when the
subscription lapses and comes back in between: reactivation grants a period's free credit only
for a period the cycle opened (the account was created before it), never the creation's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from talktime.wallet import Wallet
from talktime.wallet.cycle import run_cycle
from wallet_helpers import FREE, PLAN

from apikit import ADMIN, idem, import_tiny_card, set_status

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def test_an_upgrade_from_a_plan_without_free_credit_waits_for_the_next_period_across_a_lapse(
    engine: sa.Engine,
) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("trial", 0, now=MARCH)
    wallet.upsert_plan(PLAN, FREE, now=MARCH)
    day = MARCH + timedelta(days=4)
    account = wallet.create_account("Acme", "trial", "acct", now=day).account.id
    wallet.set_plan(account, PLAN, "upgrade", now=day + timedelta(days=1))
    wallet.set_status(account, "past_due", "late", now=day + timedelta(days=2))
    back = wallet.set_status(account, "active", "paid", now=day + timedelta(days=3))
    assert back.balance.free == 0
    assert wallet.balance(account, now=day + timedelta(days=3)).free == 0
    assert [e for e in wallet.events(account) if e["type"] == "free_credit.granted"] == []

    run_cycle(engine, APRIL + timedelta(minutes=5))  # April's credit, of the new plan
    assert wallet.balance(account, now=APRIL + timedelta(hours=1)).free == FREE
    assert wallet.verify(now=APRIL + timedelta(hours=1)) == []


def test_a_reactivation_in_the_creation_period_grants_no_free_credit_over_the_api(
    api: Any,
) -> None:
    import_tiny_card(api)
    body = {"name": "Acme", "plan": "trial", "rate_card": "tiny"}
    created = api.post("/v1/admin/accounts", json=body, headers={**ADMIN, **idem()})
    assert created.status_code == 201, created.text
    account = created.json()["id"]
    path = f"/v1/admin/accounts/{account}"
    upgraded = api.patch(path, json={"plan": "pocket"}, headers={**ADMIN, **idem()})
    assert upgraded.status_code == 200, upgraded.text
    set_status(api, account, "canceled")
    back = api.patch(path, json={"status": "active"}, headers={**ADMIN, **idem()})
    assert back.status_code == 200, back.text
    assert back.json()["balance"]["free"] == "0.0000"
    assert back.json()["plan"] == "pocket"
