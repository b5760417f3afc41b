"""The embedded auto-recharge and purchase calls (`recharge.configure`, `set_payment_method`,
`purchase`, as the README shows them) refuse arguments of the wrong type or out of range with
`invalid_request` before any query, alike on both backends. Before: an account id of 2^64 was
an OverflowError on SQLite and a DataError on PostgreSQL; a customer holding a NUL or longer than
its column was stored by SQLite and a raw DataError on PostgreSQL; ``enabled="no"`` or None was a
raw SQLAlchemy error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import InvalidRequestError, Wallet
from talktime.wallet import recharge as rc
from talktime.wallet.payments import TestProvider
from wallet_helpers import PLAN, T0, make_wallet


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


def _configure(engine: sa.Engine, account: Any, **changes: Any) -> object:
    args: dict[str, Any] = {"enabled": True, "threshold": 1_000_000, "amount": 5_000_000}
    args |= changes
    with engine.begin() as conn:
        return rc.configure(conn, account, now=args.pop("now", 0), **args)


def _card(engine: sa.Engine, account: Any, **changes: Any) -> object:
    args: dict[str, Any] = {"customer": "cus_1", "payment_method": "pm_1", "now": 0} | changes
    with engine.begin() as conn:
        return rc.set_payment_method(conn, account, **args)


def _buy(engine: sa.Engine, account: Any) -> object:
    return rc.purchase(engine, account, 1_000_000, "order-1", TestProvider(), now=T0)


BAD: dict[str, Callable[[sa.Engine, int], object]] = {
    "configure an account id 2^64": lambda e, a: _configure(e, 2**64),
    "configure an account id given as a float": lambda e, a: _configure(e, a + 0.0),
    "configure an account id True": lambda e, a: _configure(e, True),
    "configure enabled='no'": lambda e, a: _configure(e, a, enabled="no"),
    "configure enabled=None": lambda e, a: _configure(e, a, enabled=None),
    "configure enabled=1": lambda e, a: _configure(e, a, enabled=1),
    "configure now given as a string": lambda e, a: _configure(e, a, now="0"),
    "save a card of an account id 2^64": lambda e, a: _card(e, 2**64),
    "save a customer holding a NUL": lambda e, a: _card(e, a, customer="cus\x00"),
    "save a payment method of 201 characters": lambda e, a: _card(e, a, payment_method="p" * 201),
    "save a customer given as an int": lambda e, a: _card(e, a, customer=5),
    "save a payment method with a lone surrogate": lambda e, a: _card(
        e, a, payment_method="pm\ud800"
    ),
    "purchase for an account id 2^64": lambda e, a: _buy(e, 2**64),
    "purchase for an account id given as a float": lambda e, a: _buy(e, a + 0.0),
}


@pytest.mark.parametrize("call", list(BAD.values()), ids=list(BAD))
def test_a_bad_recharge_or_purchase_argument_is_invalid_request_and_changes_nothing(
    wallet: Wallet, call: Callable[[sa.Engine, int], object]
) -> None:
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    _configure(wallet.engine, account, enabled=False)
    _card(wallet.engine, account)
    with wallet.engine.connect() as conn:
        before = rc.get_settings_of(conn, account)
    balance = wallet.balance(account)
    with pytest.raises(InvalidRequestError) as refused:
        call(wallet.engine, account)
    assert refused.value.code == "invalid_request"
    with wallet.engine.connect() as conn:
        assert rc.get_settings_of(conn, account) == before
    assert wallet.balance(account) == balance


def test_a_card_of_200_characters_is_saved_and_none_clears_it(wallet: Wallet) -> None:
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    saved = _card(wallet.engine, account, customer="c" * 200, payment_method="p" * 200)
    assert isinstance(saved, rc.RechargeSettings)
    assert (saved.customer, saved.payment_method) == ("c" * 200, "p" * 200)
    cleared = _card(wallet.engine, account, customer=None, payment_method=None)
    assert isinstance(cleared, rc.RechargeSettings)
    assert (cleared.customer, cleared.payment_method) == (None, None)
