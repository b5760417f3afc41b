"""Regression tests for discrepancies the stateful model of `test_probe_model_limits.py` found
between the wallet and the README's rules (both backends)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime.wallet import MonthlyLimitReachedError
from wallet_helpers import PLAN, make_wallet


def test_monthly_limit_reached_is_queued_once_per_period_even_after_paid_usage_without_a_limit(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    acct = wallet.create_account("A", "free", "create", monthly_limit=1_000).account.id
    wallet.grant(acct, "purchased", 10_000, "buy")
    with pytest.raises(MonthlyLimitReachedError):
        wallet.charge(acct, 2_000, "over-1")
    wallet.set_monthly_limit(acct, None, "no-limit")
    wallet.charge(acct, 500, "paid-without-limit")  # paid usage while no limit is set
    wallet.set_monthly_limit(acct, 100, "low-limit")
    with pytest.raises(MonthlyLimitReachedError):
        wallet.charge(acct, 1, "over-2")
    assert len(wallet.events(acct, type="monthly_limit.reached")) == 1
    assert wallet.plans()[PLAN] > 0  # the helper's plans are there (sanity)
