"""Holds through the embedded `Wallet`: a ttl of zero or less is refused by `extend` as by
`authorize` (before, `extend(hold, 0, key, ttl=timedelta(0))` moved a pending hold's deadline to
now and a negative ttl into the past, so the hold lapsed at once), on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import Book, InvalidRequestError, Wallet, holds
from talktime.wallet.periods import to_micros
from wallet_helpers import PLAN, T0, make_wallet


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-60), timedelta(days=-400)])
@pytest.mark.parametrize("amount", [0, 1_000])
def test_extend_with_a_ttl_of_zero_or_less_is_refused_and_the_hold_keeps_its_deadline(
    wallet: Wallet, ttl: timedelta, amount: int
) -> None:
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    hold = wallet.authorize(account, 5_000, "auth", timedelta(minutes=5)).hold
    before = wallet.balance(account), wallet.ledger(account).entries
    with pytest.raises(InvalidRequestError) as refused:
        wallet.extend(hold.id, amount, "ext", ttl=ttl)
    assert refused.value.code == "invalid_request"
    assert "positive" in refused.value.detail
    assert (wallet.balance(account), wallet.ledger(account).entries) == before
    # the hold is still pending with its deadline: nothing to expire, and it extends later
    assert wallet.expire_holds(now=T0 + timedelta(minutes=1)) == 0
    later = wallet.extend(hold.id, amount, "ext", ttl=timedelta(minutes=10))
    assert later.hold.expires_at == T0 + timedelta(minutes=10)
    assert wallet.verify() == []


def test_a_book_extend_with_a_ttl_of_zero_or_less_is_refused(wallet: Wallet) -> None:
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    hold = wallet.authorize(account, 5_000, "auth", timedelta(minutes=5)).hold
    with wallet.engine.begin() as conn:
        book = Book(conn, to_micros(T0))
        for ttl in (0, -1):
            with pytest.raises(InvalidRequestError):
                holds.extend(book, hold.id, 0, f"ext{ttl}", ttl)
    assert wallet.ledger(account).entries[0].kind == "hold"


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(microseconds=-1)])
def test_authorize_with_a_ttl_of_zero_or_less_is_refused(wallet: Wallet, ttl: timedelta) -> None:
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    with pytest.raises(InvalidRequestError):
        wallet.authorize(account, 5_000, "auth", ttl)
    assert wallet.balance(account).held == 0
