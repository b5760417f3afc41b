"""Payment providers: manual refuses, test is deterministic, stripe talks to a local fake Stripe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakestripe import Seen, fake_stripe
from talktime import money
from talktime.config import Settings
from talktime.wallet.payments import (
    AutomaticPaymentUnavailableError,
    ManualProvider,
    PaymentRequest,
    PaymentSetupError,
    StripeProvider,
    TestProvider,
    provider_from_settings,
)


def request(
    amount: int = 10 * money.DOLLAR, key: str = "k1", pm: str = "pm_card_visa", account: str = "a1"
) -> PaymentRequest:
    return PaymentRequest(account, amount, "USD", key, customer="cus_1", payment_method=pm)


@pytest.fixture
def stripe_fake() -> Iterator[tuple[StripeProvider, Seen]]:
    with fake_stripe() as (base, seen):
        yield StripeProvider("sk_test_x", api_base=base, max_network_retries=0), seen


def test_manual_provider_refuses_automatic_charges_with_an_actionable_error() -> None:
    with pytest.raises(AutomaticPaymentUnavailableError, match="operator"):
        ManualProvider().charge(request())


def test_test_provider_succeeds_by_default_and_replays_a_key() -> None:
    provider = TestProvider()
    first = provider.charge(request())
    assert first.succeeded
    assert provider.charge(request()) == first
    assert len(provider.attempts) == 1
    assert provider.paid == 10 * money.DOLLAR


def test_test_provider_declines_by_amount_and_by_account_switch() -> None:
    provider = TestProvider(decline_amounts={5 * money.DOLLAR})
    assert provider.charge(request(5 * money.DOLLAR, "k1")).outcome == "declined"
    assert provider.charge(request(6 * money.DOLLAR, "k2")).succeeded
    provider.decline("a1", "insufficient_funds")
    result = provider.charge(request(key="k3"))
    assert (result.outcome, result.reason) == ("declined", "insufficient_funds")
    provider.accept("a1")
    assert provider.charge(request(key="k4")).succeeded
    assert provider.paid == 16 * money.DOLLAR


def test_test_provider_errors_are_not_remembered_so_a_retry_can_succeed() -> None:
    provider = TestProvider()
    provider.fail("a1")
    assert provider.charge(request()).outcome == "error"
    provider.accept("a1")
    assert provider.charge(request()).succeeded


def test_amounts_that_are_not_whole_cents_are_refused() -> None:
    with pytest.raises(PaymentSetupError, match="whole number of cents"):
        TestProvider().charge(request(amount=1_005))


def test_stripe_success_creates_an_off_session_confirmed_intent(
    stripe_fake: tuple[StripeProvider, Seen],
) -> None:
    provider, seen = stripe_fake
    result = provider.charge(request(amount=12_340_000, key="recharge:a1:1"))
    assert result.succeeded
    assert result.reference == "pi_fake1"
    [sent] = seen.requests
    assert sent["path"] == "/v1/payment_intents"
    assert sent["idempotency_key"] == "recharge:a1:1"
    assert sent["authorization"] == "Bearer sk_test_x"
    form = sent["form"]
    assert form["amount"] == "1234"
    assert form["currency"] == "usd"
    assert form["customer"] == "cus_1"
    assert form["payment_method"] == "pm_card_visa"
    assert form["off_session"] == "true"
    assert form["confirm"] == "true"


def test_stripe_decline_is_a_declined_result_with_the_decline_code(
    stripe_fake: tuple[StripeProvider, Seen],
) -> None:
    provider, _ = stripe_fake
    result = provider.charge(request(pm="pm_card_chargeDeclinedInsufficientFunds"))
    assert result.outcome == "declined"
    assert result.reason == "insufficient_funds"
    assert result.reference == "pi_fake1"


def test_stripe_retry_sends_the_same_idempotency_key_and_charges_once(
    stripe_fake: tuple[StripeProvider, Seen],
) -> None:
    provider, seen = stripe_fake
    first = provider.charge(request(key="recharge:a1:7"))
    again = provider.charge(request(key="recharge:a1:7"))
    assert first == again
    assert [r["idempotency_key"] for r in seen.requests] == ["recharge:a1:7"] * 2
    assert seen.intents_created == 1


def test_stripe_server_error_is_an_error_result_safe_to_retry(
    stripe_fake: tuple[StripeProvider, Seen],
) -> None:
    provider, seen = stripe_fake
    result = provider.charge(request(pm="pm_server_error"))
    assert result.outcome == "error"
    assert seen.intents_created == 0


def test_stripe_without_a_saved_payment_method_is_refused_before_any_request(
    stripe_fake: tuple[StripeProvider, Seen],
) -> None:
    provider, seen = stripe_fake
    with pytest.raises(PaymentSetupError, match="payment method"):
        provider.charge(PaymentRequest("a1", money.DOLLAR, "USD", "k"))
    assert seen.requests == []


def test_settings_choose_the_provider() -> None:
    assert isinstance(provider_from_settings(Settings()), ManualProvider)
    assert isinstance(provider_from_settings(Settings(payment_provider="test")), TestProvider)
    stripe = provider_from_settings(
        Settings(payment_provider="stripe", stripe_api_key="sk_test_1")  # type: ignore[arg-type]
    )
    assert isinstance(stripe, StripeProvider)
    with pytest.raises(PaymentSetupError, match="STRIPE_API_KEY"):
        provider_from_settings(Settings(payment_provider="stripe"))


def test_zero_decimal_currencies_are_refused_rather_than_mispriced() -> None:
    with pytest.raises(PaymentSetupError, match="zero-decimal"):
        TestProvider().charge(PaymentRequest("a1", money.DOLLAR, "JPY", "k"))
