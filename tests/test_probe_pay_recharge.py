"""A recharge not yet sent to the provider buys the auto-recharge amount set when it is paid;
one already sent keeps its amount (its retries repeat the same payment under the same key)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from talktime.wallet import Wallet
from talktime.wallet import recharge as rc
from talktime.wallet.payments import TestProvider
from wallet_helpers import T0, make_wallet

D = 1_000_000


def _queued(engine: sa.Engine, amount: int) -> tuple[Wallet, int]:
    """An account with $10 paid, auto-recharge of ``amount`` under $5, one recharge queued."""
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    wallet.grant(account, "purchased", 10 * D, "seed")
    _configure(engine, account, amount)
    wallet.charge(account, 6 * D, "c1")  # 4 left: under the threshold
    return wallet, account


def _configure(engine: sa.Engine, account: int, amount: int) -> None:
    with engine.begin() as conn:
        rc.configure(
            conn, account, enabled=True, threshold=5 * D, amount=amount, now=rc.to_micros(T0)
        )


def test_a_queued_recharge_buys_the_amount_lowered_before_it_was_paid(
    engine: sa.Engine,
) -> None:
    wallet, account = _queued(engine, 500 * D)
    _configure(engine, account, 20 * D)  # the owner lowers it before the worker runs
    provider = TestProvider()
    [done] = rc.process_recharges(engine, provider, T0)
    assert done.outcome == "succeeded"
    assert [p.amount for p in provider.attempts] == [20 * D]
    assert wallet.balance(account).paid == 24 * D
    with engine.connect() as conn:
        [row] = rc.list_recharges(conn, account)
    assert row.amount == 20 * D


def test_a_recharge_already_sent_keeps_its_amount_on_retry(engine: sa.Engine) -> None:
    wallet, account = _queued(engine, 500 * D)
    provider = TestProvider()
    provider.fail(str(account))
    [first] = rc.process_recharges(engine, provider, T0)
    assert first.outcome == "error"
    _configure(engine, account, 20 * D)
    provider.accept(str(account))
    later = T0 + timedelta(hours=1)
    [second] = rc.process_recharges(engine, provider, later)
    assert second.outcome == "succeeded"
    assert [p.amount for p in provider.attempts] == [500 * D]
    assert wallet.balance(account, later).paid == 504 * D
