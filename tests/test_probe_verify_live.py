"""Reads of a database in use see one snapshot on both backends: charges and calls committing
while `verify` reads never show up as breaches, and a balance never shows half a charge."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from talktime import money
from talktime.config import Settings
from talktime.service import balance as balance_service
from talktime.wallet import Wallet


def test_verify_during_live_charges_and_holds_reports_no_false_breach(engine: sa.Engine) -> None:
    wallet = Wallet(engine)  # the real clock, as `talktime verify` runs
    wallet.upsert_plan("none", 0)
    accounts = [wallet.create_account(f"A{i}", "none", f"create-{i}").account.id for i in range(3)]
    for account in accounts:
        wallet.grant(account, "purchased", 10**12, f"buy-{account}")
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic(account: int) -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                wallet.charge(account, 1_000, f"c-{account}-{n}")
                hold = wallet.authorize(account, 5_000, f"h-{account}-{n}", timedelta(minutes=5))
                wallet.settle(hold.hold.id, 3_000, f"s-{account}-{n}")
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=traffic, args=(a,)) for a in accounts]
    for thread in threads:
        thread.start()
    try:
        seen = [str(b) for _ in range(15) for b in wallet.verify()]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert seen == []
    assert wallet.verify() == []
    wallet.close()


def test_balance_read_during_live_charges_shows_each_charge_whole(engine: sa.Engine) -> None:
    # Paid credit only: every charge moves `paid` down and `period_usage` up by its amount, so
    # a balance read from one snapshot always has them add up to what was bought.
    wallet = Wallet(engine)
    wallet.upsert_plan("none", 0)
    account = wallet.create_account("A", "none", "create").account.id
    wallet.grant(account, "purchased", 10**9, "buy")
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                wallet.charge(account, 1_000, f"c-{n}")
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        settings = Settings(database_url=str(engine.url))
        api_reads = [balance_service.balance(engine, account, settings) for _ in range(60)]
        wallet_reads = [wallet.balance(account) for _ in range(60)]
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert {money.parse(b["paid"]) + money.parse(b["period_usage"]) for b in api_reads} == {10**9}
    assert {b.paid + b.period_usage for b in wallet_reads} == {10**9}
    wallet.close()
