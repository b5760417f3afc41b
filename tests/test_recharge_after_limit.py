"""Auto-recharge follows the monthly limit now in force: a charge once refused for the limit
must not keep auto-recharge off after the limit is raised, and a recharge postponed for the
limit becomes due again when the limit changes; on both backends.

Before, `limit_reached` also read the period's `limit_reached` flag, which only records that
the `monthly_limit.reached` event was sent (a refusal sets it, raising the limit does not
clear it): auto-recharge stayed off for the rest of the period."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import MonthlyLimitReachedError, Wallet
from talktime.wallet.payments import TestProvider
from test_recharge import D, enable, paid_account, process, recharges_of
from wallet_helpers import T0, make_wallet


def _limited(engine: sa.Engine) -> tuple[Wallet, int]:
    """An account with 20 of paid credit, a limit of 100, auto-recharge of 10 under 15."""
    wallet = make_wallet(engine)
    account = paid_account(wallet, 20 * D)
    wallet.set_monthly_limit(account, 100 * D, "limit-100")
    enable(wallet, account, threshold=15 * D, amount=10 * D)
    return wallet, account


def test_a_charge_refused_for_the_limit_does_not_keep_auto_recharge_off_once_raised(
    engine: sa.Engine,
) -> None:
    wallet, account = _limited(engine)
    wallet.set_monthly_limit(account, 1 * D, "limit-1")
    with pytest.raises(MonthlyLimitReachedError):
        wallet.charge(account, 5 * D, "refused")  # flags the period's limit event
    wallet.set_monthly_limit(account, 100 * D, "limit-100-again")
    wallet.charge(account, 10 * D, "under-threshold")  # paid 10 < 15, usage 10 of 100
    assert [r.state for r in recharges_of(wallet, account)] == ["pending"]
    assert process(wallet, TestProvider()) == ["succeeded"]
    assert wallet.balance(account).paid == 20 * D
    assert wallet.verify() == []


def test_a_recharge_postponed_for_the_limit_is_due_again_when_the_limit_is_raised(
    engine: sa.Engine,
) -> None:
    wallet, account = _limited(engine)
    wallet.charge(account, 10 * D, "under-threshold")  # queues a recharge; usage 10
    wallet.set_monthly_limit(account, 10 * D, "limit-10")  # usage has reached it
    assert process(wallet, TestProvider()) == ["postponed"]
    (postponed,) = recharges_of(wallet, account)
    assert postponed.state == "pending"
    assert postponed.next_attempt_at > T0 + timedelta(days=1)  # the period's end
    wallet.set_monthly_limit(account, 100 * D, "limit-100-again")
    assert process(wallet, TestProvider()) == ["succeeded"]
    assert wallet.balance(account).paid == 20 * D
    assert wallet.verify() == []


def test_a_postponed_recharge_is_postponed_again_if_the_new_limit_is_still_reached(
    engine: sa.Engine,
) -> None:
    wallet, account = _limited(engine)
    wallet.charge(account, 10 * D, "under-threshold")
    wallet.set_monthly_limit(account, 10 * D, "limit-10")
    assert process(wallet, TestProvider()) == ["postponed"]
    wallet.set_monthly_limit(account, 5 * D, "limit-5")  # lowered: still reached
    assert process(wallet, TestProvider()) == ["postponed"]
    assert wallet.balance(account).paid == 10 * D
    assert process(wallet, TestProvider()) == []  # not due again before the period's end
