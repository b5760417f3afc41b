"""`Wallet.run_cycle`, which the README names ("the embedded `Wallet.run_cycle` reads the plans
table"), exists and runs the monthly cycle at the wallet's clock (before, an AttributeError)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import InvalidRequestError, Wallet
from wallet_helpers import FREE, PLAN, T0


def test_wallet_run_cycle_moves_accounts_to_the_period_of_its_clock(engine: sa.Engine) -> None:
    clock = [T0]
    with Wallet(engine, clock=lambda: clock[0]) as wallet:
        wallet.upsert_plan(PLAN, FREE)
        account = wallet.create_account("Acme", PLAN, "acct").account.id
        wallet.charge(account, 1_000, "c1")
        assert wallet.run_cycle() == []  # the period has not ended
        clock[0] = datetime(2026, 4, 2, tzinfo=UTC)
        runs = wallet.run_cycle()
        assert [(r.account_id, r.period_start, r.expired, r.granted) for r in runs] == [
            (account, datetime(2026, 4, 1, tzinfo=UTC), FREE - 1_000, FREE)
        ]
        assert wallet.run_cycle() == []  # idempotent
        may = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(hours=1)
        assert [r.period_start.month for r in wallet.run_cycle(now=may)] == [5]
        assert wallet.balance(account, now=may).free == FREE
        with pytest.raises(InvalidRequestError):
            wallet.run_cycle(now=datetime(2026, 6, 1))
        assert wallet.verify() == []
