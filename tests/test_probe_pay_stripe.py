"""Stripe PaymentIntents that are still `processing`: a retry under the same key learns how
they ended (Stripe's idempotent replay keeps answering `processing`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fakestripe import Seen, fake_stripe
from talktime import money
from talktime.wallet import recharge as rc
from talktime.wallet.payments import PaymentRequest, StripeProvider
from wallet_helpers import T0, make_wallet


@pytest.fixture
def stripe_fake() -> Iterator[tuple[StripeProvider, Seen]]:
    with fake_stripe() as (base, seen):
        yield StripeProvider("sk_test_x", api_base=base, max_network_retries=0), seen


def _request(key: str = "k1") -> PaymentRequest:
    return PaymentRequest(
        "a1", 10 * money.DOLLAR, "USD", key, customer="cus_1", payment_method="pm_processing"
    )


def test_a_processing_payment_is_not_yet_paid(stripe_fake: tuple[StripeProvider, Seen]) -> None:
    provider, _ = stripe_fake
    result = provider.charge(_request())
    assert (result.outcome, result.reference) == ("error", "pi_fake1")


def test_a_retry_of_a_processing_payment_that_succeeded_since_is_paid_once(
    stripe_fake: tuple[StripeProvider, Seen],
) -> None:
    provider, seen = stripe_fake
    assert provider.charge(_request()).outcome == "error"
    seen.intents["pi_fake1"]["status"] = "succeeded"  # the bank debit went through
    again = provider.charge(_request())
    assert (again.outcome, again.reference) == ("succeeded", "pi_fake1")
    assert seen.intents_created == 1


def test_a_retry_of_a_processing_payment_that_failed_since_is_declined(
    stripe_fake: tuple[StripeProvider, Seen],
) -> None:
    provider, seen = stripe_fake
    provider.charge(_request())
    seen.intents["pi_fake1"]["status"] = "requires_payment_method"
    assert provider.charge(_request()).outcome == "declined"


def test_a_purchase_paid_by_a_debit_that_was_processing_is_credited_once_on_retry(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    with engine.begin() as conn:
        rc.set_payment_method(
            conn, account, customer="cus_1", payment_method="pm_processing", now=rc.to_micros(T0)
        )
    with fake_stripe() as (base, seen):
        provider = StripeProvider("sk_test_x", api_base=base, max_network_retries=0)
        with pytest.raises(rc.PaymentUnavailableError):
            rc.purchase(engine, account, 10 * money.DOLLAR, "buy-1", provider, now=T0)
        assert wallet.balance(account).paid == 0
        seen.intents["pi_fake1"]["status"] = "succeeded"
        granted = rc.purchase(engine, account, 10 * money.DOLLAR, "buy-1", provider, now=T0)
        rc.purchase(engine, account, 10 * money.DOLLAR, "buy-1", provider, now=T0)
    assert granted.grant.source == "purchase:pi_fake1"
    assert seen.intents_created == 1
    assert wallet.balance(account).paid == 10 * money.DOLLAR


def test_a_recharge_paid_by_a_debit_that_was_processing_is_granted_on_its_retry(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    wallet.grant(account, "purchased", 10 * money.DOLLAR, "seed")
    with engine.begin() as conn:
        now = rc.to_micros(T0)
        rc.set_payment_method(
            conn, account, customer="cus_1", payment_method="pm_processing", now=now
        )
        rc.configure(
            conn,
            account,
            enabled=True,
            threshold=5 * money.DOLLAR,
            amount=20 * money.DOLLAR,
            now=now,
        )
    wallet.charge(account, 6 * money.DOLLAR, "c1")  # 4 left: a recharge is queued
    with fake_stripe() as (base, seen):
        provider = StripeProvider("sk_test_x", api_base=base, max_network_retries=0)
        [first] = rc.process_recharges(engine, provider, T0)
        assert first.outcome == "error"
        seen.intents["pi_fake1"]["status"] = "succeeded"
        [second] = rc.process_recharges(engine, provider, T0 + timedelta(hours=1))
    assert second.outcome == "succeeded"
    assert seen.intents_created == 1
    assert wallet.balance(account, T0 + timedelta(hours=1)).paid == 24 * money.DOLLAR
