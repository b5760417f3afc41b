"""A money refusal's sentence names the account's currency beside every amount, so a reader
of the message alone knows what the figures are in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from talktime.wallet import (
    InsufficientCreditError,
    MonthlyLimitReachedError,
    RefundNotAllowedError,
    Wallet,
)

EUR = 1_000_000


def _eur_account(wallet: Wallet) -> tuple[int, int]:
    """A EUR account without free credit and 2 EUR of purchased credit: (account, grant)."""
    wallet.upsert_plan("nothing-free", 0)
    account = wallet.create_account("Eu", "nothing-free", key="eu", currency="EUR").account.id
    grant = wallet.grant(account, "purchased", 2 * EUR, key="buy").grant.id
    return account, grant


def test_insufficient_credit_names_the_currency_of_what_is_needed_and_available(
    wallet: Wallet,
) -> None:
    account, _ = _eur_account(wallet)
    with pytest.raises(InsufficientCreditError) as charge:
        wallet.charge(account, 3 * EUR, key="too-much")
    assert "this needs 3.0000 EUR but only 2.0000 EUR is available" in str(charge.value)
    with pytest.raises(InsufficientCreditError) as hold:
        wallet.authorize(account, 3 * EUR, key="hold", ttl=timedelta(minutes=5))
    assert "reserving 3.0000 EUR needs more than the 2.0000 EUR available" in str(hold.value)


def test_monthly_limit_refusal_names_the_currency_of_the_limit_and_the_usage(
    wallet: Wallet,
) -> None:
    account, _ = _eur_account(wallet)
    wallet.set_monthly_limit(account, EUR, key="limit")
    wallet.authorize(account, EUR // 2, key="call", ttl=timedelta(minutes=5))
    with pytest.raises(MonthlyLimitReachedError) as refused:
        wallet.charge(account, EUR, key="over")
    assert str(refused.value).startswith(
        "this would use 1.0000 EUR of paid credit, but only 0.5000 EUR of the monthly limit "
        "of 1.0000 EUR is left this period after the 0.5000 EUR held for usage in progress"
    )


def test_refund_refusal_names_the_currency_of_the_unspent_credit(wallet: Wallet) -> None:
    account, grant = _eur_account(wallet)
    with pytest.raises(RefundNotAllowedError) as refused:
        wallet.refund(account, grant, 5 * EUR, key="refund")
    assert (
        f"grant {grant} has 2.0000 EUR of unspent credit that can be refunded, less than the "
        "5.0000 EUR asked"
    ) in str(refused.value)
