"""Grant rules found by an audit, on SQLite and PostgreSQL: a purchased grant not yet effective
is refundable in full; a grant already expired is refused; a grant's default priority given
explicitly is the same request as none (and records stored before still replay)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from talktime.store.wallet_tables import idempotency, ledger
from talktime.wallet import (
    IdempotencyConflictError,
    InvalidRequestError,
    RefundNotAllowedError,
    Wallet,
    to_json,
)
from talktime.wallet.grants import _grant_fingerprint, grant_fingerprints
from talktime.wallet.model import DEFAULT_PRIORITY
from wallet_helpers import PLAN, T0, make_wallet

D = 1_000_000
TOMORROW = T0 + timedelta(days=1)


@pytest.fixture
def wallet(engine: sa.Engine) -> Wallet:
    return make_wallet(engine)


def new_account(wallet: Wallet) -> int:
    return wallet.create_account("Acme", PLAN, "create").account.id


def entries(engine: sa.Engine, account: int) -> int:
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(ledger).where(ledger.c.account_id == account)
        ).scalar()
    return int(count or 0)


# ---- refund of credit not yet effective ------------------------------------------------------


def test_a_purchased_grant_not_yet_effective_is_refundable_in_full(wallet: Wallet) -> None:
    account = new_account(wallet)
    bought = wallet.grant(account, "purchased", 5 * D, "buy", effective_at=TOMORROW).grant
    before = wallet.balance(account)
    refunded = wallet.refund(account, bought.id, 5 * D, "refund")
    assert refunded.amount == 5 * D
    assert refunded.balance.available == before.available  # it was not usable yet
    [grant] = [g for g in wallet.grants(account) if g.id == bought.id]
    assert grant.remaining == 0
    assert wallet.balance(account, now=TOMORROW + timedelta(hours=1)).paid == 0
    assert wallet.verify(now=TOMORROW + timedelta(hours=1)) == []


def test_a_grant_not_yet_effective_refuses_more_than_it_holds_naming_all_of_it(
    wallet: Wallet,
) -> None:
    account = new_account(wallet)
    bought = wallet.grant(account, "purchased", 5 * D, "buy", effective_at=TOMORROW).grant
    with pytest.raises(RefundNotAllowedError) as refused:
        wallet.refund(account, bought.id, 5 * D + 1, "refund")
    assert refused.value.extra["refundable"] == 5 * D
    assert wallet.refund(account, bought.id, 2 * D, "part").amount == 2 * D


def test_an_expired_purchased_grant_is_still_not_refundable(wallet: Wallet) -> None:
    account = new_account(wallet)
    bought = wallet.grant(account, "purchased", 5 * D, "buy", expires_at=TOMORROW).grant
    later = TOMORROW + timedelta(seconds=1)
    with pytest.raises(RefundNotAllowedError) as refused:
        wallet.refund(account, bought.id, 1, "refund", now=later)
    assert refused.value.extra["refundable"] == 0


def test_unspent_credit_of_an_effective_grant_is_what_neither_charges_nor_holds_took(
    wallet: Wallet,
) -> None:
    account = wallet.create_account("Acme", "free", "create").account.id  # no free credit
    bought = wallet.grant(account, "purchased", 5 * D, "buy").grant
    wallet.charge(account, 1 * D, "spend")
    wallet.authorize(account, 2 * D, "hold", timedelta(minutes=5))
    with pytest.raises(RefundNotAllowedError) as refused:
        wallet.refund(account, bought.id, 2 * D + 1, "refund")
    assert refused.value.extra["refundable"] == 2 * D


# ---- a grant already expired ------------------------------------------------------------------


@pytest.mark.parametrize("ago", [timedelta(0), timedelta(seconds=1), timedelta(days=40)])
def test_a_grant_expiring_by_now_is_refused_and_changes_nothing(
    wallet: Wallet, engine: sa.Engine, ago: timedelta
) -> None:
    account = new_account(wallet)
    grants, balance = wallet.grants(account), wallet.balance(account)
    written = entries(engine, account)
    with pytest.raises(InvalidRequestError) as refused:
        wallet.grant(account, "promotional", 5 * D, "promo", expires_at=T0 - ago)
    assert refused.value.code == "invalid_request"
    assert "must expire after now" in refused.value.detail
    assert "give an expires_at in the future" in refused.value.detail
    assert (wallet.grants(account), wallet.balance(account)) == (grants, balance)
    assert entries(engine, account) == written
    assert wallet.expire_grants() == 0
    # the key was not stored: the same key with a future expiry grants
    later = wallet.grant(account, "promotional", 5 * D, "promo", expires_at=TOMORROW)
    assert not later.replayed


def test_a_grant_that_expired_since_it_was_issued_still_replays(wallet: Wallet) -> None:
    account = new_account(wallet)
    first = wallet.grant(account, "purchased", 5 * D, "buy", expires_at=TOMORROW)
    again = wallet.grant(
        account, "purchased", 5 * D, "buy", expires_at=TOMORROW, now=TOMORROW + timedelta(1)
    )
    assert again.replayed
    assert to_json(again) == to_json(first)


# ---- the default priority, given or not --------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(None, 30), (30, None), (30, 30)])
def test_a_purchased_grant_with_its_default_priority_is_the_same_request_as_without(
    wallet: Wallet, first: int | None, second: int | None
) -> None:
    account = new_account(wallet)
    granted = wallet.grant(account, "purchased", 1 * D, "g2", priority=first)
    again = wallet.grant(account, "purchased", 1 * D, "g2", priority=second)
    assert again.replayed
    assert to_json(again) == to_json(granted)
    with pytest.raises(IdempotencyConflictError):
        wallet.grant(account, "purchased", 1 * D, "g2", priority=31)


@pytest.mark.parametrize("replayed_with", [None, 30])
def test_a_record_stored_with_the_explicit_default_before_the_change_still_replays(
    wallet: Wallet, engine: sa.Engine, replayed_with: int | None
) -> None:
    account = new_account(wallet)
    first = wallet.grant(account, "purchased", 1 * D, "g2", priority=30)
    old = _grant_fingerprint("purchased", 1 * D, None, None, 30, None, utc=True)
    with engine.begin() as conn:  # the record as the earlier code wrote it
        conn.execute(
            sa.update(idempotency)
            .where(idempotency.c.account_id == account, idempotency.c.key == "g2")
            .values(fingerprint=old)
        )
    again = wallet.grant(account, "purchased", 1 * D, "g2", priority=replayed_with)
    assert again.replayed
    assert to_json(again) == to_json(first)
    with pytest.raises(IdempotencyConflictError):
        wallet.grant(account, "purchased", 1 * D, "g2", priority=29)
    assert [g.kind for g in wallet.grants(account)].count("purchased") == 1


KINDS = sorted(k for k in DEFAULT_PRIORITY if k != "free_monthly")


@given(
    kind=st.sampled_from(KINDS),
    amount=st.integers(1, 10**12),
    priority=st.integers(1, 2**31 - 1),
)
def test_a_grant_fingerprint_is_stored_alike_for_the_default_priority_and_none_only(
    kind: str, amount: int, priority: int
) -> None:
    stored_for = grant_fingerprints(kind, amount, None, None, priority, None)[0]
    stored_for_none = grant_fingerprints(kind, amount, None, None, None, None)[0]
    assert (stored_for == stored_for_none) == (priority == DEFAULT_PRIORITY[kind])
    # what an omitted priority always stored is what is stored now
    assert stored_for_none == _grant_fingerprint(kind, amount, None, None, None, None, utc=True)


# ---- accounts holding more than a 64-bit integer ----------------------------------------------


def test_an_account_holding_more_than_2_63_micro_units_still_moves_on_in_the_cycle(
    wallet: Wallet,
) -> None:
    """The cycle's read of an account's credit summed every entry in one SQL SUM, which
    overflowed on SQLite: the run stopped for every account and each charge of that account
    failed with a raw database error."""
    big, other = new_account(wallet), wallet.create_account("Other", PLAN, "other").account.id
    for n in range(3):
        wallet.grant(big, "purchased", 2**62, f"buy-{n}")
    next_month = T0 + timedelta(days=40)
    runs = wallet.run_cycle(next_month)
    assert {run.account_id for run in runs} == {big, other}
    assert wallet.charge(big, D, "after", now=next_month).from_free == D
    assert wallet.balance(big, now=next_month).paid == 3 * 2**62
    assert wallet.verify(now=next_month) == []
