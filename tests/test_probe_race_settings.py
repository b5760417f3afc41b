"""Races between first writes of an account's auto-recharge settings, on SQLite and PostgreSQL.

The settings row is inserted by the first `configure` or `set_payment_method`; on PostgreSQL a
second first write that ran while the first was uncommitted found no row, inserted too, and
failed with a unique violation (a 500 from `PUT /v1/settings/auto-recharge`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from talktime.wallet import recharge
from talktime.wallet.periods import to_micros
from wallet_helpers import T0, make_wallet

NOW = to_micros(T0)


def _account(engine: sa.Engine) -> int:
    wallet = make_wallet(engine)
    try:
        return wallet.create_account("Acme", "free", key="acme").account.id
    finally:
        wallet.close()


def test_a_first_configure_while_another_is_uncommitted_waits_and_updates_the_row(
    engine: sa.Engine,
) -> None:
    account = _account(engine)
    first_wrote = threading.Event()
    release = threading.Event()

    def first() -> None:
        with engine.begin() as conn:
            recharge.configure(
                conn, account, enabled=True, threshold=5_000_000, amount=10_000_000, now=NOW
            )
            first_wrote.set()
            release.wait(10)

    def second() -> recharge.RechargeSettings:
        first_wrote.wait(10)
        with engine.begin() as conn:
            return recharge.set_payment_method(
                conn, account, customer="cus_1", payment_method="pm_1", now=NOW
            )

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(first)
        two = pool.submit(second)
        threading.Timer(0.5, release.set).start()  # the second is waiting by then
        one.result(timeout=30)
        saved = two.result(timeout=30)

    assert (saved.enabled, saved.threshold, saved.amount) == (True, 5_000_000, 10_000_000)
    assert (saved.customer, saved.payment_method) == ("cus_1", "pm_1")


def test_concurrent_first_settings_writes_all_succeed(engine: sa.Engine) -> None:
    accounts = [_account_n(engine, n) for n in range(8)]
    barrier = threading.Barrier(3)

    def configure(account: int, amount: int) -> None:
        barrier.wait(10)
        with engine.begin() as conn:
            recharge.configure(
                conn, account, enabled=True, threshold=5_000_000, amount=amount, now=NOW
            )

    def card(account: int) -> None:
        barrier.wait(10)
        with engine.begin() as conn:
            recharge.set_payment_method(conn, account, customer="cus", payment_method="pm", now=NOW)

    for account in accounts:
        with ThreadPoolExecutor(3) as pool:
            futures = [
                pool.submit(configure, account, 10_000_000),
                pool.submit(configure, account, 20_000_000),
                pool.submit(card, account),
            ]
            for future in futures:
                future.result(timeout=30)  # no unique violation
        with engine.connect() as conn:
            saved = recharge.get_settings_of(conn, account)
        assert saved is not None
        assert saved.amount in (10_000_000, 20_000_000)
        assert (saved.customer, saved.payment_method) == ("cus", "pm")


def _account_n(engine: sa.Engine, n: int) -> int:
    wallet = make_wallet(engine)
    try:
        return wallet.create_account(f"Acme {n}", "free", key=f"acme-{n}").account.id
    finally:
        wallet.close()
