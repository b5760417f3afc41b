"""Grant rules found by an audit, on SQLite and PostgreSQL: a purchased grant not yet effective
is refundable in full; a grant already expired is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.store.wallet_tables import ledger
from talktime.wallet import (
    InvalidRequestError,
    RefundNotAllowedError,
    Wallet,
    to_json,
)
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
