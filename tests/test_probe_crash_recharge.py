"""Auto-recharges after a SIGKILL of the process paying them: a worker killed while paying the
first recharge of a batch leaves the others never sent, so they are still canceled when
auto-recharge is turned off meanwhile, and buy the amount set when they are finally paid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

import talktime
from talktime.wallet import Wallet
from talktime.wallet import recharge as rc
from talktime.wallet.payments import TestProvider
from wallet_helpers import T0, make_wallet

from ops_helpers import TESTS

D = 1_000_000
SRC = str(Path(talktime.__file__).parent.parent)  # the talktime this test imports


def _due_recharges(engine: sa.Engine, accounts: int) -> tuple[Wallet, list[int]]:
    """``accounts`` accounts each with $4 paid left, auto-recharge of $20 under $5 queued."""
    wallet = make_wallet(engine)
    ids = []
    for n in range(accounts):
        account = wallet.create_account(f"a{n}", "free", f"create-{n}").account.id
        wallet.grant(account, "purchased", 10 * D, f"seed-{n}")
        _configure(engine, account, enabled=True, amount=20 * D)
        wallet.charge(account, 6 * D, f"use-{n}")
        ids.append(account)
    return wallet, ids


def _configure(engine: sa.Engine, account: int, *, enabled: bool, amount: int) -> None:
    with engine.begin() as conn:
        rc.configure(
            conn, account, enabled=enabled, threshold=5 * D, amount=amount, now=rc.to_micros(T0)
        )


def _killed_while_paying_the_first(db_url: str) -> None:
    """Run `process_recharges` in a child whose provider SIGKILLs it on the first payment."""
    child = textwrap.dedent(
        f"""
        import os, signal
        from talktime.store import make_engine
        from talktime.wallet import recharge as rc
        from wallet_helpers import T0

        class Dies:
            name = "dies"
            def charge(self, request):
                os.kill(os.getpid(), signal.SIGKILL)

        rc.process_recharges(make_engine({db_url!r}), Dies(), T0)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(TESTS)])}
    done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def test_a_recharge_never_sent_before_a_crash_is_canceled_when_auto_recharge_is_turned_off(
    db_url: str, engine: sa.Engine
) -> None:
    # the claim counted an attempt for the whole batch: the second recharge, never sent, was
    # taken as "may have been paid" and charged after its owner turned auto-recharge off
    wallet, (first, second) = _due_recharges(engine, 2)
    _killed_while_paying_the_first(db_url)
    _configure(engine, second, enabled=False, amount=20 * D)
    provider = TestProvider()
    later = T0 + timedelta(microseconds=rc.LEASE_MICROS)
    outcomes = {o.account_id: o.outcome for o in rc.process_recharges(engine, provider, later)}
    assert outcomes == {first: "succeeded", second: "canceled"}
    assert [p.account_id for p in provider.attempts] == [str(first)]
    assert wallet.balance(second, later).paid == 4 * D
    assert wallet.verify(later) == []


def test_a_recharge_never_sent_before_a_crash_buys_the_amount_set_since(
    db_url: str, engine: sa.Engine
) -> None:
    wallet, (first, second) = _due_recharges(engine, 2)
    _killed_while_paying_the_first(db_url)
    _configure(engine, first, enabled=True, amount=50 * D)  # maybe sent: keeps its amount
    _configure(engine, second, enabled=True, amount=50 * D)  # never sent: the new amount
    provider = TestProvider()
    later = T0 + timedelta(microseconds=rc.LEASE_MICROS)
    rc.process_recharges(engine, provider, later)
    paid = {p.account_id: p.amount for p in provider.attempts}
    assert paid == {str(first): 20 * D, str(second): 50 * D}
    with engine.connect() as conn:
        assert [r.attempts for r in rc.list_recharges(conn, first)] == [2]
        assert [r.attempts for r in rc.list_recharges(conn, second)] == [1]
    assert wallet.verify(later) == []
