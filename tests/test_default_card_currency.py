"""The default card (`rate_card` setting) changed to a card in another currency never prices
an account billed in its own: every charging request is 422 `rate_card_currency_mismatch` and
charges nothing (an assigned card is checked when assigned, the default one when used)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.service import cards
from talktime.store import make_engine
from test_probe_admin_accounts import _euro, _import

import apikit
from apikit import Tenant, tenant


@pytest.fixture
def euro_default(api: Any, db_url: str, tmp_path: Path) -> Iterator[tuple[Tenant, TestClient]]:
    """A USD tenant made under the USD default card, and a client of an app on the same
    database whose default card is now the `euro` card."""
    t = tenant(api, credit="5.00", number="+14155550100")
    _euro(api)
    app = create_app(
        Settings(
            database_url=db_url,
            admin_key=apikit.ADMIN_KEY,
            rate_cards_dir=str(tmp_path / "cards"),
            rate_card="euro",
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Tenant(**{**t.__dict__, "client": client}), client
        app.state.engine.dispose()


def _refused(response: Any, account_id: int) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "rate_card_currency_mismatch"
    assert problem["detail"] == (
        f"rate card 'euro' prices in EUR but account {account_id} is billed in USD; nothing "
        "was charged; an operator must give the account a card in its currency"
    )


def test_a_default_card_in_another_currency_refuses_every_charge_and_charges_nothing(
    euro_default: tuple[Tenant, TestClient],
) -> None:
    t, _client = euro_default
    before, ledger = t.balance(), t.get("/v1/ledger").json()
    _refused(t.sms("+14155550111"), t.account_id)
    inbound = {"from": "+14155550111", "to": t.number, "text": "hi"}
    _refused(t.post("/v1/messages/inbound", inbound), t.account_id)
    _refused(t.post("/v1/numbers", {"e164": "+14155550123"}), t.account_id)
    call = {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user}
    _refused(t.post("/v1/calls", call), t.account_id)
    assert t.balance() == before
    assert t.get("/v1/ledger").json() == ledger


def test_an_account_given_a_card_in_its_currency_is_priced_again(
    euro_default: tuple[Tenant, TestClient],
) -> None:
    t, client = euro_default
    _refused(t.sms("+14155550111"), t.account_id)
    headers = {**apikit.ADMIN, **apikit.idem()}
    assigned = client.patch(
        f"/v1/admin/accounts/{t.account_id}", json={"rate_card": "default"}, headers=headers
    )
    assert assigned.status_code == 200, assigned.text
    sent = t.sms("+14155550111")
    assert sent.status_code == 201, sent.text
    assert sent.json()["currency"] == "USD"


def test_the_cycle_takes_no_free_credit_figure_from_a_default_card_in_another_currency(
    api: Any, db_url: str, tmp_path: Path
) -> None:
    t = tenant(api, plan="startup")
    changes = {'currency = "USD"': 'currency = "EUR"', 'startup = "2.00"': 'startup = "999.00"'}
    assert _import(api, "euro", **changes).status_code == 201
    now = time.time_ns() // 1000
    settings = Settings(
        database_url=db_url, rate_cards_dir=str(tmp_path / "cards"), rate_card="euro"
    )
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            credit = cards.plan_credit(settings)(conn, t.account_id, "startup", now)
            assert credit is None  # the plans table's figure, not the EUR card's
            usd = Settings(database_url=db_url, rate_cards_dir=str(tmp_path / "cards"))
            assert cards.plan_credit(usd)(conn, t.account_id, "startup", now) == 2_000_000
    finally:
        engine.dispose()
