"""Grant rules found by an audit, on SQLite and PostgreSQL: a purchased grant not yet effective
is refundable in full."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import RefundNotAllowedError, Wallet
from wallet_helpers import PLAN, T0, make_wallet

D = 1_000_000
TOMORROW = T0 + timedelta(days=1)


@pytest.fixture
def wallet(engine: sa.Engine) -> Wallet:
    return make_wallet(engine)


def new_account(wallet: Wallet) -> int:
    return wallet.create_account("Acme", PLAN, "create").account.id


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
