"""Wallet operations and refusals, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.store.wallet_tables import idempotency, ledger
from talktime.wallet import (
    AccountNotFoundError,
    ChargeItem,
    ChargeResult,
    GrantNotFoundError,
    HoldNotFoundError,
    HoldNotPendingError,
    IdempotencyConflictError,
    InsufficientCreditError,
    InvalidAmountError,
    InvalidRequestError,
    MonthlyLimitReachedError,
    PlanNotFoundError,
    RefundNotAllowedError,
    Wallet,
    to_json,
)
from talktime.wallet.periods import add_months, period_bounds
from wallet_helpers import FREE, PLAN, T0, make_wallet


@pytest.fixture
def wallet(engine: sa.Engine) -> Wallet:
    return make_wallet(engine)


def new_account(wallet: Wallet, paid: int = 0, **kw: object) -> int:
    account_id = wallet.create_account("Acme", PLAN, f"create-{id(kw)}-{paid}", **kw).account.id  # type: ignore[arg-type]
    if paid:
        wallet.grant(account_id, "purchased", paid, f"buy-{account_id}")
    return account_id


def assert_clean(wallet: Wallet) -> None:
    assert [str(b) for b in wallet.verify()] == []


def test_new_account_gets_its_plans_free_credit_until_the_period_ends(wallet: Wallet) -> None:
    created = wallet.create_account("Acme", PLAN, "new")
    balance = wallet.balance(created.account.id)
    assert (balance.free, balance.paid, balance.available) == (FREE, 0, FREE)
    start, end = period_bounds(created.account.anchor_at, T0)
    assert balance.free_expires_at == end == created.account.period_end
    assert created.account.period_start == start
    assert wallet.events(created.account.id, "free_credit.granted")[0]["payload"]["amount"] == FREE
    assert_clean(wallet)


def test_unknown_plan_is_refused_and_creates_nothing(wallet: Wallet) -> None:
    with pytest.raises(PlanNotFoundError):
        wallet.create_account("Acme", "platinum", "k")
    created = wallet.create_account("Acme", PLAN, "k")  # the key stayed free
    assert created.account.id >= 1


def test_charge_uses_free_credit_first_then_paid(wallet: Wallet) -> None:
    account = new_account(wallet, paid=5_000_000)
    result = wallet.charge(account, 12_000_000, "c1", reference="msg-1", lines=[{"rate": "us"}])
    assert (result.from_free, result.from_paid) == (FREE, 2_000_000)
    assert (result.balance.free, result.balance.paid, result.balance.available) == (
        0,
        3_000_000,
        3_000_000,
    )
    entries = wallet.ledger(account, transaction_id=result.transaction_id).entries
    assert sorted(e.amount for e in entries) == [-FREE, -2_000_000]
    assert {e.reference for e in entries} == {"msg-1"}
    assert entries[0].lines == [{"rate": "us"}]
    assert_clean(wallet)


def test_consumption_order_is_priority_then_soonest_expiry_then_effective_then_id(
    wallet: Wallet,
) -> None:
    account = new_account(wallet)
    wallet.charge(account, FREE, "drain")
    late = wallet.grant(account, "promotional", 100, "late", expires_at=T0 + timedelta(days=9))
    soon = wallet.grant(account, "promotional", 100, "soon", expires_at=T0 + timedelta(days=2))
    never = wallet.grant(account, "promotional", 100, "never")
    bought = wallet.grant(account, "purchased", 100, "bought")
    order = []
    for i in range(4):
        result = wallet.charge(account, 100, f"c{i}")
        entry = wallet.ledger(account, transaction_id=result.transaction_id).entries[0]
        order.append(entry.grant_id)
    assert order == [soon.grant.id, late.grant.id, never.grant.id, bought.grant.id]


def test_insufficient_credit_refuses_the_whole_charge_and_says_how_much(wallet: Wallet) -> None:
    account = new_account(wallet, paid=1_000_000)
    with pytest.raises(InsufficientCreditError) as refused:
        wallet.charge(account, FREE + 1_000_001, "too-much")
    assert refused.value.status == 402
    assert refused.value.extra == {"needed": FREE + 1_000_001, "available": FREE + 1_000_000}
    assert wallet.balance(account).available == FREE + 1_000_000
    assert wallet.ledger(account, kind="usage").entries == ()
    # The refused key is not stored: the same request succeeds after a top-up.
    wallet.grant(account, "purchased", 1, "top-up")
    assert wallet.charge(account, FREE + 1_000_001, "too-much").balance.available == 0


def test_replay_returns_the_stored_result_byte_for_byte(wallet: Wallet, engine: sa.Engine) -> None:
    account = new_account(wallet, paid=5_000_000)
    first = wallet.charge(account, 700, "same", reference="m")
    again = wallet.charge(account, 700, "same", reference="m", now=T0 + timedelta(days=3))
    assert again.replayed
    assert not first.replayed
    assert to_json(again) == to_json(first)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(idempotency.c.response)).all()
    assert to_json(first) in {r.response for r in stored}
    assert len(wallet.ledger(account, kind="usage").entries) == 1


def test_same_key_with_a_different_request_is_a_conflict(wallet: Wallet) -> None:
    account = new_account(wallet)
    wallet.charge(account, 700, "k")
    with pytest.raises(IdempotencyConflictError) as refused:
        wallet.charge(account, 701, "k")
    assert refused.value.status == 409
    with pytest.raises(IdempotencyConflictError):
        wallet.grant(account, "purchased", 700, "k")


def test_monthly_limit_caps_paid_usage_and_queues_one_event(wallet: Wallet) -> None:
    account = new_account(wallet, paid=50_000_000)
    wallet.set_monthly_limit(account, 3_000_000, "limit")
    wallet.charge(account, FREE + 2_000_000, "a")  # free credit does not count
    with pytest.raises(MonthlyLimitReachedError) as refused:
        wallet.charge(account, 1_000_001, "b")
    assert refused.value.extra == {"limit": 3_000_000, "used": 2_000_000, "needed": 1_000_001}
    with pytest.raises(MonthlyLimitReachedError):
        wallet.charge(account, 1_000_001, "b")
    assert len(wallet.events(account, "monthly_limit.reached")) == 1
    wallet.charge(account, 1_000_000, "c")
    assert wallet.balance(account).period_usage == 3_000_000
    # A new period starts a new counter (its free credit pays first, cycle run or not).
    next_month = add_months(T0, 1)
    assert wallet.charge(account, FREE + 1_000_000, "d", now=next_month).from_paid == 1_000_000
    assert wallet.balance(account, now=next_month).period_usage == 1_000_000


def test_batch_charges_each_item_on_its_own_in_one_transaction(wallet: Wallet) -> None:
    account = new_account(wallet)
    other = new_account(wallet, paid=1)
    results = wallet.charge_batch(
        [
            ChargeItem(account, 4_000_000, "b1"),
            ChargeItem(account, 7_000_000, "b2"),  # only 6 left: refused alone
            ChargeItem(other, 1_000, "b3"),
            ChargeItem(999_999, 1, "b4"),
            ChargeItem(account, 6_000_000, "b5"),
            ChargeItem(account, 4_000_000, "b1"),  # a replay inside the batch
        ]
    )
    assert isinstance(results[0], ChargeResult)
    assert isinstance(results[1], InsufficientCreditError)
    assert isinstance(results[2], ChargeResult)
    assert isinstance(results[3], AccountNotFoundError)
    assert isinstance(results[4], ChargeResult)
    assert results[4].balance.available == 0
    assert isinstance(results[5], ChargeResult)
    assert results[5].replayed
    assert to_json(results[5]) == to_json(results[0])
    assert_clean(wallet)


def test_hold_reserves_credit_and_settle_charges_the_actual_amount(wallet: Wallet) -> None:
    account = new_account(wallet, paid=2_000_000)
    hold = wallet.authorize(account, 3_000_000, "h", timedelta(minutes=10), reference="call-1")
    assert hold.balance.held == 3_000_000
    assert hold.balance.available == FREE + 2_000_000 - 3_000_000
    with pytest.raises(InsufficientCreditError):
        wallet.charge(account, FREE, "too-much-while-held")
    extended = wallet.extend(hold.hold.id, 1_000_000, "x")
    assert extended.hold.amount == 4_000_000
    settled = wallet.settle(
        hold.hold.id, 2_500_000, "s", lines=[{"leg": 1, "rate": "card@1:calls.csv:2"}]
    )
    assert (settled.charged, settled.uncollected, settled.from_free) == (2_500_000, 0, 2_500_000)
    assert settled.balance.held == 0
    assert settled.balance.available == FREE + 2_000_000 - 2_500_000
    with pytest.raises(HoldNotPendingError):
        wallet.void(hold.hold.id, "v")
    assert wallet.settle(
        hold.hold.id, 2_500_000, "s", lines=[{"leg": 1, "rate": "card@1:calls.csv:2"}]
    ).replayed
    assert_clean(wallet)


def test_settle_beyond_the_credit_records_the_shortfall_as_uncollected(wallet: Wallet) -> None:
    account = new_account(wallet)
    hold = wallet.authorize(account, 1_000_000, "h", timedelta(minutes=1))
    settled = wallet.settle(hold.hold.id, FREE + 500, "s")
    assert (settled.charged, settled.uncollected) == (FREE, 500)
    assert settled.balance.available == 0
    (entry,) = wallet.ledger(account, kind="uncollected").entries
    assert entry.amount == -500
    assert entry.grant_id is None
    (event,) = wallet.events(account, "charge.uncollected")
    assert event["payload"]["uncollected"] == 500
    assert wallet.events(account, "credit.depleted")
    assert_clean(wallet)


def test_void_and_expiry_release_the_reservation(wallet: Wallet) -> None:
    account = new_account(wallet)
    voided = wallet.authorize(account, 1_000, "h1", timedelta(minutes=1))
    wallet.void(voided.hold.id, "v1")
    lapsing = wallet.authorize(account, 2_000, "h2", timedelta(minutes=1))
    assert wallet.balance(account).held == 2_000
    assert wallet.expire_holds(now=T0 + timedelta(seconds=59)) == 0
    assert wallet.expire_holds(now=T0 + timedelta(minutes=1)) == 1
    assert wallet.balance(account).held == 0
    with pytest.raises(HoldNotPendingError):
        wallet.extend(lapsing.hold.id, 1, "e", now=T0 + timedelta(minutes=2))
    # The call happened anyway: settling an expired hold charges what is available.
    assert wallet.settle(lapsing.hold.id, 1_500, "s").charged == 1_500
    with pytest.raises(HoldNotFoundError):
        wallet.void(12345, "nope")
    assert_clean(wallet)


def test_grants_expire_and_expired_credit_is_not_usable(wallet: Wallet) -> None:
    account = new_account(wallet)
    end = wallet.account(account).period_end
    wallet.grant(account, "promotional", 500, "promo", expires_at=T0 + timedelta(days=1))
    assert wallet.balance(account, now=T0 + timedelta(days=1)).available == FREE
    with pytest.raises(InsufficientCreditError):
        wallet.charge(account, FREE + 1, "late", now=T0 + timedelta(days=1))
    assert wallet.expire_grants(now=end) == FREE + 500
    assert wallet.balance(account, now=end).available == 0
    assert [e["payload"]["amount"] for e in wallet.events(account, "free_credit.expired")] == [FREE]
    assert_clean(wallet)


def test_verify_names_free_credit_left_past_its_period(wallet: Wallet) -> None:
    account = new_account(wallet)
    end = wallet.account(account).period_end
    (breach,) = wallet.verify(now=end)
    assert breach.account_id == account
    assert breach.rule == "free_credit_not_expired"


def test_refund_takes_back_only_unspent_purchased_credit(wallet: Wallet) -> None:
    account = new_account(wallet)
    bought = wallet.grant(account, "purchased", 3_000_000, "buy")
    wallet.charge(account, FREE + 1_000_000, "use")
    with pytest.raises(RefundNotAllowedError) as refused:
        wallet.refund(account, bought.grant.id, 2_000_001, "r")
    assert refused.value.extra["refundable"] == 2_000_000
    free_grant = wallet.grants(account)[0]
    with pytest.raises(RefundNotAllowedError):
        wallet.refund(account, free_grant.id, 1, "r-free")
    with pytest.raises(GrantNotFoundError):
        wallet.refund(account, 98765, 1, "r-missing")
    refunded = wallet.refund(account, bought.grant.id, 2_000_000, "r")
    assert refunded.balance.paid == 0
    assert_clean(wallet)


def test_bad_input_is_refused_with_a_clear_error(wallet: Wallet) -> None:
    account = new_account(wallet)
    for amount in (0, -5, 1.5, True):
        with pytest.raises(InvalidAmountError):
            wallet.charge(account, amount, f"bad-{amount}")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        wallet.charge(account, 1, "")
    with pytest.raises(InvalidRequestError):
        wallet.grant(account, "gift", 1, "g")
    with pytest.raises(InvalidRequestError):
        wallet.set_status(account, "frozen", "s")
    with pytest.raises(AccountNotFoundError) as missing:
        wallet.charge(424242, 1, "c")
    assert missing.value.status == 404
    assert wallet.ledger(account, kind="usage").entries == ()


def test_account_settings_change_idempotently(wallet: Wallet) -> None:
    account = new_account(wallet)
    assert wallet.set_status(account, "past_due", "s1").account.status == "past_due"
    assert wallet.set_status(account, "past_due", "s1").replayed
    assert wallet.set_plan(account, "free", "p1").account.plan == "free"
    with pytest.raises(PlanNotFoundError):
        wallet.set_plan(account, "gold", "p2")
    wallet.set_low_balance_threshold(account, 5_000_000, "t1")
    wallet.charge(account, 6_000_000, "c")
    assert wallet.events(account, "balance.low")[0]["payload"]["threshold"] == 5_000_000


def test_ledger_pages_with_a_cursor_newest_first(wallet: Wallet, engine: sa.Engine) -> None:
    account = new_account(wallet)
    for i in range(7):
        wallet.charge(account, 10, f"c{i}", reference=f"m{i}")
    seen = []
    cursor = None
    while True:
        page = wallet.ledger(account, cursor=cursor, limit=3)
        seen += [e.id for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    with engine.connect() as conn:
        ids = conn.execute(sa.select(ledger.c.id).where(ledger.c.account_id == account)).scalars()
        assert seen == sorted(ids, reverse=True)
    assert [e.reference for e in wallet.ledger(account, reference="m3").entries] == ["m3"]
    with pytest.raises(InvalidRequestError):
        wallet.ledger(account, cursor="abc")


@pytest.mark.parametrize("cursor", ["abc", "²", "٣", "-1", str(2**62 + 1), "9" * 19])
def test_a_ledger_cursor_that_is_no_id_is_refused_before_reaching_the_database(
    wallet: Wallet, cursor: str
) -> None:
    account = new_account(wallet)
    with pytest.raises(InvalidRequestError, match="cursor"):
        wallet.ledger(account, cursor=cursor)


def test_idempotency_records_are_kept_thirty_days(wallet: Wallet) -> None:
    account = new_account(wallet)
    wallet.charge(account, 10, "old")
    assert wallet.purge_idempotency(now=T0 + timedelta(days=29)) == 0
    assert wallet.purge_idempotency(now=T0 + timedelta(days=31)) >= 1


@pytest.mark.parametrize(
    "call",
    [
        lambda w, a: w.charge(a, 10, "c", reference="r" * 201),
        lambda w, a: w.charge(a, 10, "c", reference="a\x00b"),
        lambda w, a: w.charge(a, 10, "a\x00b"),
        lambda w, a: w.authorize(a, 10, "h", timedelta(minutes=5), reference="r" * 201),
        lambda w, a: w.grant(a, "promotional", 10, "g", source="s" * 201),
        lambda w, a: w.grant(a, "promotional", 10, "g", source="a\x00b"),
        lambda w, a: w.ledger(a, reference="a\x00b"),
    ],
    ids=[
        "long-reference",
        "nul-reference",
        "nul-key",
        "long-hold-reference",
        "long-source",
        "nul-source",
        "nul-filter",
    ],
)
def test_text_the_database_cannot_store_alike_is_refused_and_changes_nothing(
    wallet: Wallet, call: Any
) -> None:
    account = new_account(wallet, paid=1_000)
    before = (wallet.balance(account), wallet.ledger(account).entries)
    with pytest.raises(InvalidRequestError):
        call(wallet, account)
    assert (wallet.balance(account), wallet.ledger(account).entries) == before
    assert wallet.verify() == []


def test_a_batch_item_with_a_bad_reference_is_refused_alone(wallet: Wallet) -> None:
    account = new_account(wallet, paid=1_000)
    available = wallet.balance(account).available
    results = wallet.charge_batch(
        [
            ChargeItem(account, 10, "b1", reference="ok"),
            ChargeItem(account, 10, "b2", reference="r" * 201),
            ChargeItem(account, 10, "b3", reference="ok too"),
        ]
    )
    assert isinstance(results[0], ChargeResult)
    assert isinstance(results[1], InvalidRequestError)
    assert isinstance(results[2], ChargeResult)
    assert wallet.balance(account).available == available - 20
    assert wallet.verify() == []


def test_a_batch_item_with_a_nul_key_is_refused_alone(wallet: Wallet) -> None:
    account = new_account(wallet, paid=1_000)
    results = wallet.charge_batch([ChargeItem(account, 10, "k\x00"), ChargeItem(account, 10, "k")])
    assert isinstance(results[0], InvalidRequestError)
    assert isinstance(results[1], ChargeResult)
