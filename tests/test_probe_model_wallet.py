"""Regression tests for discrepancies the stateful model of `test_probe_model_limits.py` found
between the wallet and the README's rules (both backends)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime.wallet import MonthlyLimitReachedError, accounts, charges
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


def test_a_limit_set_in_the_same_book_counts_the_usage_already_stored_this_period(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    acct = wallet.create_account("A", "free", "create").account.id
    wallet.grant(acct, "purchased", 10_000, "buy")
    wallet.charge(acct, 600, "earlier")  # stored paid usage: 600
    with wallet.book() as book:
        charges.charge(book, acct, 100, "no-limit-yet")  # paid usage while no limit is set
        accounts.update(book, acct, "set_monthly_limit", {"monthly_limit": 1_000}, "limit")
        with pytest.raises(MonthlyLimitReachedError):
            charges.charge(book, acct, 400, "past-the-limit")  # 600 + 100 + 400 > 1,000
        charges.charge(book, acct, 300, "up-to-the-limit")  # 600 + 100 + 300 = 1,000
    assert wallet.balance(acct).period_usage == 1_000
