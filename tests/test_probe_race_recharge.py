"""The auto-recharge worker racing batches of charges, on SQLite and PostgreSQL.

A claim of due recharges locked their accounts in the order the recharges were due, while a
batch of charges (`charge_batch`, the API's group commit) locks its accounts in id order: a
claim holding account 2 and waiting for account 1, against a batch holding 1 and waiting for 2,
was a PostgreSQL deadlock that rolled the whole claim back.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa

from talktime.store.wallet_tables import accounts
from talktime.wallet import ChargeItem, recharge
from talktime.wallet.payments import TestProvider
from talktime.wallet.periods import to_micros
from wallet_helpers import T0, make_wallet

NOW = to_micros(T0)


def _accounts_with_due_recharges(engine: sa.Engine) -> tuple[int, int]:
    """Two accounts whose recharges are due, the second account's first."""
    wallet = make_wallet(engine)
    try:
        ids = [wallet.create_account(name, "free", key=name).account.id for name in ("a", "b")]
        for account in ids:
            wallet.grant(account, "purchased", 1_000_000, key="topup")
    finally:
        wallet.close()
    with engine.begin() as conn:
        for account in ids:
            recharge.set_payment_method(conn, account, customer="c", payment_method="pm", now=NOW)
            recharge.configure(
                conn, account, enabled=True, threshold=5_000_000, amount=10_000_000, now=NOW
            )
        recharge._insert_recharge(conn, ids[1], 10_000_000, NOW - 2)  # due first
        recharge._insert_recharge(conn, ids[0], 10_000_000, NOW - 1)
    return ids[0], ids[1]


def _lock(conn: sa.Connection, account: int) -> None:
    conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account).with_for_update())


def test_a_recharge_claim_locks_accounts_in_id_order_like_a_batch(engine: sa.Engine) -> None:
    first, second = _accounts_with_due_recharges(engine)
    provider = TestProvider()
    claiming = threading.Event()

    def process() -> list[recharge.RechargeOutcome]:
        claiming.set()
        return recharge.process_recharges(engine, provider, T0)

    with ThreadPoolExecutor(1) as pool, engine.begin() as batch:
        _lock(batch, first)  # a batch of charges has locked the lower account...
        outcomes = pool.submit(process)
        claiming.wait(10)
        time.sleep(0.5)  # ...the claim now waits for it...
        _lock(batch, second)  # ...and the batch goes on to the higher one
        batch.commit()
        done = outcomes.result(timeout=60)

    assert sorted((o.account_id, o.outcome) for o in done) == [
        (first, "succeeded"),
        (second, "succeeded"),
    ]
    assert provider.paid == 20_000_000


def test_recharges_processed_during_batches_of_charges_are_paid_once_each(
    engine: sa.Engine,
) -> None:
    first, second = _accounts_with_due_recharges(engine)
    wallet = make_wallet(engine)
    provider = TestProvider()
    barrier = threading.Barrier(2)

    def charge() -> None:
        barrier.wait(10)
        for n in range(20):
            wallet.charge_batch(
                [ChargeItem(first, 1_000, f"a-{n}"), ChargeItem(second, 1_000, f"b-{n}")],
                now=T0 + timedelta(seconds=1),
            )

    def process() -> list[recharge.RechargeOutcome]:
        barrier.wait(10)
        return recharge.process_recharges(engine, provider, T0)

    try:
        with ThreadPoolExecutor(2) as pool:
            charged = pool.submit(charge)
            outcomes = pool.submit(process).result(timeout=60)
            charged.result(timeout=60)
        assert sorted(o.outcome for o in outcomes) == ["succeeded", "succeeded"]
        assert provider.paid == 20_000_000
        assert wallet.verify(now=T0 + timedelta(seconds=2)) == []
    finally:
        wallet.close()
