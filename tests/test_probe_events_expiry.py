"""Grant expiry sends `balance.low` / `credit.depleted` like a charge, once per crossing and in
the expiry's own transaction (the periodic job and the monthly cycle), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import PlanNotFoundError, Wallet
from talktime.wallet.cycle import CycleFailure, run_cycle
from wallet_helpers import PLAN, T0, make_wallet, rent

D = 1_000_000
APR1 = datetime(2026, 4, 1, tzinfo=UTC)


def low_and_depleted(wallet: Wallet, account: int) -> tuple[list[int], int]:
    """The `available` of each `balance.low` event and the number of `credit.depleted`."""
    low = [e["payload"]["available"] for e in wallet.events(account, "balance.low")]
    return low, len(wallet.events(account, "credit.depleted"))


def promo_account(wallet: Wallet, promo: int, purchased: int) -> int:
    """A zero-credit-plan account with a $5 threshold, ``promo`` expiring a day after T0 and
    ``purchased`` credit that never expires."""
    account = wallet.create_account("acme", "free", "create", low_balance_threshold=5 * D)
    wallet.grant(account.account.id, "promotional", promo, "promo", expires_at=T0 + timedelta(1))
    if purchased:
        wallet.grant(account.account.id, "purchased", purchased, "bought")
    return account.account.id


def test_expiring_a_grant_below_the_threshold_sends_balance_low_once(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = promo_account(wallet, 8 * D, 1 * D)
    assert wallet.expire_grants(T0 + timedelta(2)) == 8 * D
    assert wallet.balance(account, T0 + timedelta(2)).available == 1 * D
    assert low_and_depleted(wallet, account) == ([1 * D], 0)
    [low] = wallet.events(account, "balance.low")
    assert low["payload"]["threshold"] == 5 * D
    assert wallet.expire_grants(T0 + timedelta(3)) == 0  # nothing left to expire: no repeat
    assert low_and_depleted(wallet, account) == ([1 * D], 0)
    assert wallet.verify(T0 + timedelta(3)) == []


def test_expiring_the_last_credit_sends_balance_low_and_credit_depleted(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = promo_account(wallet, 8 * D, 0)
    wallet.expire_grants(T0 + timedelta(2))
    assert low_and_depleted(wallet, account) == ([0], 1)


def test_an_expiry_that_stays_over_the_threshold_sends_nothing(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = promo_account(wallet, 2 * D, 10 * D)
    wallet.expire_grants(T0 + timedelta(2))
    assert low_and_depleted(wallet, account) == ([], 0)


def test_an_expiry_already_under_the_threshold_sends_no_second_balance_low(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = promo_account(wallet, 2 * D, 3 * D)
    wallet.charge(account, 1 * D, "c")  # 5 -> 4: this charge crossed the threshold
    assert low_and_depleted(wallet, account) == ([4 * D], 0)
    wallet.expire_grants(T0 + timedelta(2))  # 4 -> 3: no new crossing
    assert low_and_depleted(wallet, account) == ([4 * D], 0)


def test_the_cycle_judges_the_balance_after_the_new_free_credit(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create", low_balance_threshold=5 * D)
    account_id = account.account.id
    wallet.charge(account_id, 3 * D, "c")  # 7 of the $10 free credit left
    [run] = run_cycle(engine, APR1)
    assert (run.expired, run.granted) == (7 * D, 10 * D)
    assert low_and_depleted(wallet, account_id) == ([], 0)  # 7 -> 10: no alert


def test_the_cycle_expiring_free_credit_under_the_threshold_sends_balance_low(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=5 * D
    ).account.id
    wallet.grant(account_id, "purchased", 1 * D, "bought")
    wallet.set_plan(account_id, "free", "plan")  # no free credit from April
    [run] = run_cycle(engine, APR1)
    assert (run.expired, run.granted) == (10 * D, 0)
    assert low_and_depleted(wallet, account_id) == ([1 * D], 0)
    run_cycle(engine, APR1 + timedelta(1))  # idempotent: no second event
    assert low_and_depleted(wallet, account_id) == ([1 * D], 0)
    assert wallet.verify(APR1) == []


def test_the_cycle_expiring_all_credit_of_a_canceled_account_sends_credit_depleted(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=5 * D
    ).account.id
    wallet.set_status(account_id, "canceled", "cancel")
    run_cycle(engine, APR1)
    assert low_and_depleted(wallet, account_id) == ([0], 1)


def test_a_rolled_back_cycle_writes_no_balance_event(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=5 * D
    ).account.id

    def refuse(conn: sa.Connection, account: int, plan: str, start: int) -> int | None:
        raise PlanNotFoundError("gone", plan=plan)

    failures: list[CycleFailure] = []
    assert run_cycle(engine, APR1, failures, plan_credit=refuse) == []
    assert [f.account_id for f in failures] == [account_id]
    assert low_and_depleted(wallet, account_id) == ([], 0)
    assert wallet.balance(account_id, T0).available == 10 * D


@pytest.mark.parametrize("threshold", [None, 0])
def test_no_threshold_or_a_zero_threshold_never_sends_balance_low_on_expiry(
    engine: sa.Engine, threshold: int | None
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create", low_balance_threshold=threshold)
    account_id = account.account.id
    wallet.grant(account_id, "promotional", 8 * D, "promo", expires_at=T0 + timedelta(1))
    wallet.expire_grants(T0 + timedelta(2))
    assert low_and_depleted(wallet, account_id) == ([], 1)


def test_the_expiry_job_before_the_cycle_leaves_the_month_end_judgement_to_the_cycle(
    engine: sa.Engine,
) -> None:
    # the worker's order at month end: `wallet.expire` (every minute) before the cycle
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=5 * D
    ).account.id
    wallet.grant(account_id, "purchased", 1 * D, "bought")
    assert wallet.expire_grants(APR1 + timedelta(minutes=1)) == 10 * D
    assert low_and_depleted(wallet, account_id) == ([], 0)  # April's credit is still to come
    [run] = run_cycle(engine, APR1 + timedelta(minutes=5))
    assert (run.expired, run.granted) == (0, 10 * D)
    assert low_and_depleted(wallet, account_id) == ([], 0)  # 11 -> 11: no alert
    assert wallet.verify(APR1 + timedelta(minutes=5)) == []


def test_after_the_expiry_job_the_cycle_still_alerts_when_no_new_credit_comes(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=5 * D
    ).account.id
    wallet.grant(account_id, "purchased", 1 * D, "bought")
    wallet.charge(account_id, 2 * D, "c")  # 8 of the free credit left: 9 available
    wallet.set_plan(account_id, "free", "plan")
    wallet.expire_grants(APR1 + timedelta(minutes=1))
    assert low_and_depleted(wallet, account_id) == ([], 0)
    run_cycle(engine, APR1 + timedelta(minutes=5))
    assert low_and_depleted(wallet, account_id) == ([1 * D], 0)  # 9 -> 1
    run_cycle(engine, APR1 + timedelta(minutes=6))
    wallet.expire_grants(APR1 + timedelta(minutes=7))
    assert low_and_depleted(wallet, account_id) == ([1 * D], 0)


def test_a_promotion_expiring_with_the_month_is_judged_with_the_new_free_credit(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=15 * D
    ).account.id
    wallet.grant(account_id, "promotional", 8 * D, "promo", expires_at=APR1)
    # the job judges the promotion alone (18 -> 10: under 15), the cycle the free credit
    wallet.expire_grants(APR1 + timedelta(minutes=1))
    assert low_and_depleted(wallet, account_id) == ([10 * D], 0)
    run_cycle(engine, APR1 + timedelta(minutes=5))
    assert low_and_depleted(wallet, account_id) == ([10 * D], 0)


def test_a_charge_after_the_expiry_that_crossed_itself_is_not_alerted_twice(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = promo_account(wallet, 8 * D, 6 * D)
    # the promotion lapsed at T0 + 1 day (14 -> 6: still over $5); the job has not run yet
    wallet.charge(account, 2 * D, "c", now=T0 + timedelta(hours=30))  # 6 -> 4: crossed here
    assert low_and_depleted(wallet, account) == ([4 * D], 0)
    wallet.expire_grants(T0 + timedelta(2))
    assert low_and_depleted(wallet, account) == ([4 * D], 0)


def test_the_expiry_alert_names_the_credit_left_when_the_grant_lapsed(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = promo_account(wallet, 8 * D, 3 * D)
    # 11 -> 3 when the promotion lapsed; a charge since took it to 2.5 (already under)
    wallet.charge(account, D // 2, "c", now=T0 + timedelta(hours=30))
    assert low_and_depleted(wallet, account) == ([], 0)
    wallet.expire_grants(T0 + timedelta(2))
    assert low_and_depleted(wallet, account) == ([3 * D], 0)


def test_a_hold_closing_on_a_lapsed_grant_before_the_job_still_alerts_the_lapse(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = promo_account(wallet, 8 * D, 1 * D)
    hold = wallet.authorize(account, 1 * D, "call", timedelta(days=3)).hold.id  # on the promo
    wallet.void(hold, "hang-up", now=T0 + timedelta(hours=30))  # expires the promotion's rest
    wallet.expire_grants(T0 + timedelta(2))  # nothing left for the job
    assert low_and_depleted(wallet, account) == ([1 * D], 0)  # 8 -> 1 when it lapsed
    assert wallet.verify(T0 + timedelta(2)) == []


def test_a_charge_between_the_period_end_and_the_cycle_is_not_alerted_twice(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=5 * D
    ).account.id
    wallet.grant(account_id, "purchased", 7 * D, "bought")
    wallet.set_plan(account_id, "free", "plan")  # no free credit from April
    # March's free credit lapsed at APR1: the charge sees 7 and takes it to 4 (its own alert)
    wallet.charge(account_id, 3 * D, "c", now=APR1 + timedelta(minutes=1))
    assert low_and_depleted(wallet, account_id) == ([4 * D], 0)
    run_cycle(engine, APR1 + timedelta(minutes=5))  # 17 -> 7 at APR1: no crossing of its own
    assert low_and_depleted(wallet, account_id) == ([4 * D], 0)


def test_a_late_cycle_judges_a_promotion_that_lapsed_after_the_period_end_with_the_new_credit(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account(
        "acme", PLAN, "create", low_balance_threshold=15 * D
    ).account.id
    promo_end = APR1 + timedelta(days=1)
    wallet.grant(account_id, "promotional", 8 * D, "promo", expires_at=promo_end)
    # nothing ran until two days into April: March's 10 -> April's 10 at APR1 (18 -> 18),
    # then the promotion lapsed (18 -> 10)
    [run] = run_cycle(engine, APR1 + timedelta(days=2))
    assert run.expired == 18 * D
    assert low_and_depleted(wallet, account_id) == ([10 * D], 0)
    assert wallet.expire_grants(APR1 + timedelta(days=2)) == 0
    assert low_and_depleted(wallet, account_id) == ([10 * D], 0)
    assert wallet.verify(APR1 + timedelta(days=2)) == []


@pytest.mark.parametrize(
    ("spent", "low"),
    [
        # $0 before the boundary, $10 once April's credit is in, $5 after the rents: one
        # event for the rents, with the figure after all of them
        (10 * D, [5 * D]),
        (0, [5 * D]),  # $10 before (last month's, unspent), $10 after, $5 after the rents
    ],
)
def test_the_rents_of_a_period_opening_are_judged_as_one_debit_with_the_final_figure(
    engine: sa.Engine, spent: int, low: list[int]
) -> None:
    # judged rent by rent, the cycle sent `balance.low` with the credit between two rents
    # (a month-end audit: `available` 7.001 for an account a read then showed at 0.027)
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create", low_balance_threshold=8 * D)
    account_id = account.account.id
    if spent:
        wallet.charge(account_id, spent, "use-all")
    before = wallet.events(account_id, "balance.low")
    for i in range(5):
        rent(engine, account_id, f"+1415555{i:04d}", 1 * D)
    run_cycle(engine, APR1 + timedelta(seconds=1))
    after = [e["payload"]["available"] for e in wallet.events(account_id, "balance.low")]
    assert after[len(before) :] == low
    assert wallet.balance(account_id, APR1 + timedelta(seconds=2)).available == 5 * D
    assert wallet.verify(APR1 + timedelta(seconds=2)) == []


def test_free_credit_a_call_still_holds_after_it_lapsed_shows_its_past_expiry(
    engine: sa.Engine,
) -> None:
    # `free` counted last month's credit a call in progress still reserves, while
    # `free_expires_at` left that grant out: null, "none of it expires" (a month-end audit)
    wallet = make_wallet(engine)
    account_id = wallet.create_account("acme", PLAN, "create").account.id
    wallet.authorize(account_id, D // 2, "call", timedelta(days=40))
    run_cycle(engine, APR1 + timedelta(seconds=1))
    shown = wallet.balance(account_id, APR1 + timedelta(seconds=2))
    assert (shown.free, shown.held) == (10 * D + D // 2, D // 2)
    assert shown.free_expires_at == APR1  # March's, past: written off when the call ends
    assert wallet.verify(APR1 + timedelta(seconds=2)) == []


def test_the_rents_are_judged_on_the_credit_grants_and_refunds_since_the_end_left(
    engine: sa.Engine,
) -> None:
    # judged from the ledger as it stood at the period end, a $10 grant made after it went
    # unseen (`credit.depleted` at $10 available) and a refund after it too (no event when the
    # rent took the last $2)
    wallet = make_wallet(engine)
    topped = wallet.create_account("topped", "free", "t", low_balance_threshold=5 * D)
    wallet.grant(topped.account.id, "purchased", 2 * D, "bought")
    rent(engine, topped.account.id, "+14155550100", 2 * D)
    wallet.grant(topped.account.id, "purchased", 10 * D, "topup", now=APR1 + timedelta(1))
    refunded = wallet.create_account("refunded", "free", "r")
    bought = wallet.grant(refunded.account.id, "purchased", 10 * D, "bought").grant.id
    rent(engine, refunded.account.id, "+14155550101", 2 * D)
    wallet.refund(refunded.account.id, bought, 8 * D, "back", now=APR1 + timedelta(1))
    run_cycle(engine, APR1 + timedelta(days=2))
    assert low_and_depleted(wallet, topped.account.id) == ([], 0)  # 12 -> 10
    assert low_and_depleted(wallet, refunded.account.id) == ([], 1)  # 2 -> 0
    assert wallet.verify(APR1 + timedelta(days=2)) == []
