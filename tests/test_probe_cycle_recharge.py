"""Probe of the cycle's boundary with auto-recharge: a recharge postponed by the monthly limit
waits for the end of the period holding now, even while the cycle has not yet moved the
account into that period (it was postponed to the stored, already past, period end and
claimed again on every pass)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from talktime.wallet import recharge as rc
from talktime.wallet.payments import TestProvider
from test_recharge import CFG, D, enable, paid_account, recharges_of
from wallet_helpers import make_wallet

APR1 = datetime(2026, 4, 1, tzinfo=UTC)
MAY1 = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_recharge_postponed_by_the_limit_before_the_cycle_ran_waits_for_the_periods_end(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 20 * D)
    enable(wallet, account, threshold=15 * D, amount=10 * D)
    at = APR1 + timedelta(minutes=1)  # April began; the cycle has not run yet
    assert wallet.account(account).period_end == APR1
    wallet.charge(account, 10 * D, "under-threshold", now=at)  # queues a recharge
    wallet.set_monthly_limit(account, 10 * D, "limit-10", now=at)  # April's usage reached it
    outcomes = rc.process_recharges(engine, TestProvider(), at, settings=CFG)
    assert [o.outcome for o in outcomes] == ["postponed"]
    [postponed] = recharges_of(wallet, account)
    assert (postponed.state, postponed.next_attempt_at) == ("pending", MAY1)
    later = rc.process_recharges(engine, TestProvider(), at + timedelta(seconds=5), settings=CFG)
    assert later == []  # not claimed (and postponed) again on every pass
    assert wallet.verify(at) == []
