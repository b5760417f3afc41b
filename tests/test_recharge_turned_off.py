"""Turning auto-recharge off through the embedded wallet (`Wallet.configure_auto_recharge`,
`recharge.configure`) is never refused for its amount, as the README says: an amount left out or
0 keeps the stored one, a threshold left out keeps the stored one; turning it on needs both.
Before, `configure_auto_recharge(a, enabled=False, threshold=0, amount=0)` was refused
`invalid_amount` (only the service kept the stored values). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from talktime.config import Settings
from talktime.service import credits
from talktime.wallet import InvalidAmountError, InvalidRequestError, Wallet
from talktime.wallet import recharge as rc
from wallet_helpers import make_wallet

D = 1_000_000


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


def stored(wallet: Wallet, account: int) -> rc.RechargeSettings | None:
    with wallet.engine.connect() as conn:
        return rc.get_settings_of(conn, account)


def account_with_auto_recharge(wallet: Wallet) -> int:
    """An account with $50 paid credit and auto-recharge on: under $5, buy $20."""
    account = wallet.create_account("Acme", "free", "create").account.id
    wallet.grant(account, "purchased", 50 * D, "seed")
    wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=20 * D)
    return account


def test_turning_it_off_with_an_amount_of_zero_keeps_the_stored_amount(wallet: Wallet) -> None:
    account = account_with_auto_recharge(wallet)
    off = wallet.configure_auto_recharge(account, enabled=False, threshold=0, amount=0)
    assert (off.enabled, off.threshold, off.amount) == (False, 0, 20 * D)
    assert stored(wallet, account) == off


def test_turning_it_off_with_nothing_given_keeps_threshold_and_amount(wallet: Wallet) -> None:
    account = account_with_auto_recharge(wallet)
    off = wallet.configure_auto_recharge(account, enabled=False)
    assert (off.enabled, off.threshold, off.amount) == (False, 5 * D, 20 * D)


def test_turning_it_off_stores_a_threshold_and_amount_that_are_given(wallet: Wallet) -> None:
    account = account_with_auto_recharge(wallet)
    off = wallet.configure_auto_recharge(account, enabled=False, threshold=7 * D, amount=3 * D)
    assert (off.enabled, off.threshold, off.amount) == (False, 7 * D, 3 * D)


def test_turning_it_off_with_no_amount_stored_nor_given_writes_nothing(wallet: Wallet) -> None:
    account = wallet.create_account("Acme", "free", "create").account.id
    off = wallet.configure_auto_recharge(account, enabled=False, threshold=0, amount=0)
    assert (off.enabled, off.amount) == (False, 0)
    assert stored(wallet, account) is None


@pytest.mark.parametrize("left_out", ["threshold", "amount"])
def test_turning_it_on_without_a_threshold_or_amount_is_refused_naming_it(
    wallet: Wallet, left_out: str
) -> None:
    account = wallet.create_account("Acme", "free", "create").account.id
    given = {"threshold": 5 * D, "amount": 20 * D, left_out: None}
    with pytest.raises(InvalidRequestError) as refused:
        wallet.configure_auto_recharge(account, enabled=True, **given)
    assert refused.value.extra["field"] == left_out
    assert stored(wallet, account) is None


def test_turning_it_on_with_an_amount_of_zero_is_still_refused(wallet: Wallet) -> None:
    account = account_with_auto_recharge(wallet)
    before = stored(wallet, account)
    with pytest.raises(InvalidAmountError):
        wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=0)
    assert stored(wallet, account) == before


def test_a_negative_amount_is_refused_even_when_turning_it_off(wallet: Wallet) -> None:
    account = account_with_auto_recharge(wallet)
    before = stored(wallet, account)
    with pytest.raises(InvalidAmountError):
        wallet.configure_auto_recharge(account, enabled=False, threshold=0, amount=-1)
    assert stored(wallet, account) == before


def test_the_service_turns_it_off_keeping_the_stored_values(
    wallet: Wallet, engine: sa.Engine
) -> None:
    account = account_with_auto_recharge(wallet)
    off = credits.set_auto_recharge(
        engine,
        account,
        enabled=False,
        threshold=None,
        amount=None,
        settings=Settings(database_url=str(engine.url)),
    )
    assert off["auto_recharge"] == {
        "enabled": False,
        "threshold": "5.0000",
        "amount": "20.0000",
        "disabled_reason": None,
        "customer": None,
        "payment_method": None,
    }
