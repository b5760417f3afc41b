"""Webhook bodies carry money the way the API does: decimal strings next to the account's
currency, never the wallet's integer micro-units (a receiver reading `10000000` as dollars)."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from talktime import money
from talktime.config import Settings
from talktime.ops import jobs, tasks, webhooks
from talktime.ops.clock import now_us
from talktime.wallet import Wallet

from receiver import receiver


def _deliver_all(engine: sa.Engine, settings: Settings) -> None:
    now = now_us()
    while claimed := jobs.claim(engine, "test", now=now, kinds=(webhooks.DELIVER,)):
        for job in claimed:
            webhooks.deliver(engine, settings, int(job.payload["delivery_id"]), now=now)
            with engine.begin() as conn:
                assert jobs.finish(conn, job, now=now)


def test_every_money_field_of_a_wallet_event_is_delivered_as_a_decimal_string(
    engine: sa.Engine,
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, webhooks_allow_private=True)  # type: ignore[call-arg]
    wallet = Wallet(engine)
    wallet.upsert_plan("pro", 10_000_000)
    account = wallet.create_account("acme", "pro", "create").account.id
    wallet.set_low_balance_threshold(account, 5_000_000, "threshold")
    with receiver() as hooks:
        webhooks.create_endpoint(engine, settings, account, hooks.url)
        wallet.charge(account, 6_000_000, "c1")  # balance.low: 4 left under 5
        hold = wallet.authorize(account, 1_000_000, "h1", timedelta(minutes=5)).hold.id
        wallet.settle(hold, 4_500_500, "s1")  # credit.depleted and 0.5005 uncollected
        wallet.grant(account, "purchased", 2_000_000, "g1")
        wallet.set_monthly_limit(account, 1_000_000, "limit")
        wallet.charge(account, 1_000_000, "c2")  # uses the whole limit: monthly_limit.reached
        assert tasks.dispatch_outbox(engine, "test") > 0
        _deliver_all(engine, settings)
        bodies = [json.loads(r.body) for r in hooks.requests]
    stored = {f"evt_{e['id']}": e["payload"] for e in wallet.events(account)}
    by_type = {doc["type"]: doc["data"] for doc in bodies}
    assert set(by_type) >= {
        "free_credit.granted",
        "balance.low",
        "credit.depleted",
        "charge.uncollected",
        "monthly_limit.reached",
    }
    assert by_type["balance.low"]["available"] == "4.0000"
    assert by_type["balance.low"]["threshold"] == "5.0000"
    assert by_type["charge.uncollected"]["uncollected"] == "0.5005"
    assert by_type["charge.uncollected"]["actual"] == "4.5005"
    assert by_type["free_credit.granted"]["amount"] == "10.0000"
    assert by_type["monthly_limit.reached"]["limit"] == "1.0000"
    for doc in bodies:
        data, outbox_payload = doc["data"], stored[doc["id"]]
        assert data["currency"] == "USD"
        for key, value in outbox_payload.items():
            if key in webhooks.MONEY_FIELDS:
                assert data[key] == money.format(value, 4), (doc["type"], key)
            else:
                assert data[key] == value


def test_event_data_formats_only_money_and_names_the_currency() -> None:
    data = webhooks.event_data(
        {"account_id": 7, "grant_id": 3, "amount": 8_550, "sequence": 2, "reason": "x"}, "EUR"
    )
    assert data == {
        "account_id": 7,
        "grant_id": 3,
        "amount": "0.00855",
        "sequence": 2,
        "reason": "x",
        "currency": "EUR",
    }
    assert webhooks.event_data({"endpoint_id": "we_1"}, "USD") == {"endpoint_id": "we_1"}
