"""The embedded `Wallet` buys credit and runs auto-recharge through its own methods (purchase,
payment method, auto-recharge settings, the recharge job), as the README's embedding example
does. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import InvalidRequestError, Wallet
from talktime.wallet.payments import TestProvider
from wallet_helpers import PLAN, T0, make_wallet

D = 1_000_000


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


def test_a_wallet_buys_credit_and_recharges_through_its_own_methods(wallet: Wallet) -> None:
    account = wallet.create_account("Acme", PLAN, "create").account.id
    provider = TestProvider()
    saved = wallet.set_payment_method(account, customer="cus_1", payment_method="pm_1", now=T0)
    assert (saved.customer, saved.payment_method) == ("cus_1", "pm_1")
    bought = wallet.purchase(account, 20 * D, "order-17", provider, now=T0)
    assert bought.grant.kind == "purchased"
    assert wallet.purchase(account, 20 * D, "order-17", provider, now=T0).replayed
    assert provider.paid == 20 * D
    settings = wallet.configure_auto_recharge(
        account, enabled=True, threshold=5 * D, amount=10 * D, now=T0
    )
    assert (settings.enabled, settings.threshold, settings.amount) == (True, 5 * D, 10 * D)
    wallet.charge(account, wallet.balance(account, T0).free + 16 * D, "use", now=T0)  # paid 4
    later = T0 + timedelta(minutes=1)
    [outcome] = wallet.process_recharges(provider, later)
    assert outcome.outcome == "succeeded"
    assert wallet.balance(account, later).paid == 14 * D
    assert provider.paid == 30 * D
    assert wallet.process_recharges(provider, later) == []
    assert wallet.verify(later) == []


def test_a_purchase_under_a_key_of_the_wallets_own_namespaces_is_refused_before_paying(
    wallet: Wallet,
) -> None:
    account = wallet.create_account("Acme", PLAN, "create").account.id
    provider = TestProvider()
    with pytest.raises(InvalidRequestError, match="reserved for the wallet's own"):
        wallet.purchase(account, 20 * D, f"recharge:{account}:1", provider, now=T0)
    assert provider.paid == 0
    assert wallet.balance(account, T0).paid == 0
