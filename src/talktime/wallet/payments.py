"""Payment providers: take money from a customer so the wallet can grant purchased credit.

`PaymentProvider` is the one interface (charge an amount under an idempotency key ->
succeeded | declined | error); `manual`, `test` and `stripe` implement it. No database here.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from talktime import money
from talktime.errors import TalktimeError

if TYPE_CHECKING:
    from talktime.config import Settings

Outcome = Literal["succeeded", "declined", "error"]


class AutomaticPaymentUnavailableError(TalktimeError):
    """The configured provider cannot charge a card on its own (the `manual` provider)."""

    code = "automatic_payment_unavailable"
    status = 409
    title = "Automatic payment unavailable"


class PaymentSetupError(TalktimeError):
    """A payment cannot even be attempted: no saved payment method, bad amount, no key."""

    code = "payment_setup_invalid"
    status = 422
    title = "Payment cannot be attempted"


@dataclass(frozen=True)
class PaymentRequest:
    """One attempt to take ``amount`` micro-units from an account's saved payment method.

    The provider passes ``idempotency_key`` on, so a retry with the same key never charges twice.
    ``customer`` and ``payment_method`` are the provider's references (Stripe `cus_...`, `pm_...`).
    """

    account_id: str
    amount: int
    currency: str
    idempotency_key: str
    customer: str | None = None
    payment_method: str | None = None
    description: str = "talktime credit"


@dataclass(frozen=True)
class PaymentResult:
    """What the provider said: the outcome, its payment reference and, if not paid, why."""

    outcome: Outcome
    reference: str | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        """True when the money was taken."""
        return self.outcome == "succeeded"


class PaymentProvider(Protocol):
    """Charges a customer. Implementations never raise for a decline: they return it."""

    name: str

    def charge(self, request: PaymentRequest) -> PaymentResult:
        """Take the money (or say why not). The same idempotency key gives the same result."""
        ...


ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG"})
"""Zero-decimal currencies (a sample of Stripe's list): not supported by `minor_units` yet."""


def minor_units(amount: int, currency: str) -> int:
    """``amount`` micro-units in the currency's smallest unit (cents); refuses fractions of it.

    Only currencies with two decimals (USD, EUR, GBP, CAD, AUD, ...) are supported.
    """
    if currency.upper() in ZERO_DECIMAL:
        raise PaymentSetupError(
            f"card payments in {currency.upper()} (a zero-decimal currency) are not supported"
        )
    if amount <= 0:
        raise PaymentSetupError(f"a payment must be a positive amount, not {money.format(amount)}")
    if amount % money.CENT:
        raise PaymentSetupError(
            f"{money.format(amount)} {currency.upper()} is not a whole number of cents; "
            "card payments are made in whole cents"
        )
    return amount // money.CENT


class ManualProvider:
    """Operator top-ups only: credit is granted by hand, cards are never charged."""

    name = "manual"

    def charge(self, request: PaymentRequest) -> PaymentResult:
        """Always refuses: there is no card to charge."""
        raise self.refusal(request.account_id)

    @staticmethod
    def refusal(account_id: str) -> AutomaticPaymentUnavailableError:
        """The refusal of every payment: a card cannot be charged."""
        return AutomaticPaymentUnavailableError(
            "the payment provider is 'manual', which cannot charge a card: an operator must add "
            "purchased credit by hand, or set TALKTIME_PAYMENT_PROVIDER to 'stripe'",
            account_id=account_id,
        )


@dataclass
class TestProvider:
    """Deterministic in-memory provider for tests and demos.

    Declines every payment of an amount in ``decline_amounts`` and every payment of an account in
    ``declining_accounts`` (account -> reason); answers ``error`` for ``failing_accounts``. The
    same idempotency key always returns the first result, and every distinct payment is recorded.
    """

    __test__ = False  # not a pytest test class
    name = "test"
    decline_amounts: set[int] = field(default_factory=set)
    declining_accounts: dict[str, str] = field(default_factory=dict)
    failing_accounts: set[str] = field(default_factory=set)
    attempts: list[PaymentRequest] = field(default_factory=list)
    results: dict[str, PaymentResult] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def decline(self, account_id: int | str, reason: str = "card_declined") -> None:
        """Make every later payment of ``account_id`` decline with ``reason`` (the wallet's int
        id or the request's string form alike: an int was silently never matched)."""
        self.declining_accounts[str(account_id)] = reason

    def accept(self, account_id: int | str) -> None:
        """Undo `decline` and `fail` for ``account_id``."""
        self.declining_accounts.pop(str(account_id), None)
        self.failing_accounts.discard(str(account_id))

    def fail(self, account_id: int | str) -> None:
        """Make every later payment of ``account_id`` end in a provider error."""
        self.failing_accounts.add(str(account_id))

    @property
    def paid(self) -> int:
        """Total micro-units taken by succeeded payments."""
        return sum(
            req.amount
            for req in self.attempts
            if self.results[req.idempotency_key].outcome == "succeeded"
        )

    def charge(self, request: PaymentRequest) -> PaymentResult:
        """Decide by the rules above; replays of a key return the stored result."""
        minor_units(request.amount, request.currency)
        with self._lock:
            known = self.results.get(request.idempotency_key)
            if known is not None:
                return known
            ref = "test_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:16]
            if request.account_id in self.failing_accounts:
                result = PaymentResult("error", None, "test provider told to fail")
            elif request.account_id in self.declining_accounts:
                result = PaymentResult("declined", ref, self.declining_accounts[request.account_id])
            elif request.amount in self.decline_amounts:
                result = PaymentResult("declined", ref, "card_declined")
            else:
                result = PaymentResult("succeeded", ref)
            if result.outcome != "error":  # an error is not remembered: a retry tries again
                self.attempts.append(request)
                self.results[request.idempotency_key] = result
            return result


class StripeProvider:
    """Stripe: an off-session, confirmed PaymentIntent on the customer's saved payment method.

    The idempotency key goes to Stripe as `Idempotency-Key`, so a retry returns the first
    PaymentIntent instead of charging again; an intent still `processing` (a bank debit) is
    read again, since that replay would say `processing` for ever. Card errors become
    ``declined`` with Stripe's decline code; network, rate-limit and server errors and a
    payment still processing become ``error`` (safe to retry).
    """

    name = "stripe"

    def __init__(
        self, api_key: str, *, api_base: str | None = None, max_network_retries: int = 2
    ) -> None:
        import stripe

        if not api_key:
            raise PaymentSetupError("the stripe provider needs TALKTIME_STRIPE_API_KEY")
        bases: Any = {"api": api_base} if api_base else None
        self._stripe = stripe
        self._client = stripe.StripeClient(
            api_key, base_addresses=bases, max_network_retries=max_network_retries
        )

    def charge(self, request: PaymentRequest) -> PaymentResult:
        """Create and confirm the PaymentIntent; map Stripe's answer to a `PaymentResult`."""
        stripe = self._stripe
        if not request.customer or not request.payment_method:
            raise PaymentSetupError(
                f"account {request.account_id} has no saved Stripe customer and payment method; "
                "save them (PUT /v1/settings/payment-method, or the wallet's "
                "set_payment_method) before charging",
                account_id=request.account_id,
            )
        params: Any = {
            "amount": minor_units(request.amount, request.currency),
            "currency": request.currency.lower(),
            "customer": request.customer,
            "payment_method": request.payment_method,
            "off_session": True,
            "confirm": True,
            "description": request.description,
            "metadata": {"talktime_account": request.account_id},
        }
        try:
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            )
        except stripe.CardError as exc:
            err = exc.error
            reason = (err.decline_code if err else None) or exc.code or "card_declined"
            pi = err.payment_intent if err else None
            return PaymentResult("declined", pi.id if pi else None, reason)
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            return PaymentResult("error", None, f"stripe: {exc.user_message or exc}")
        except stripe.StripeError as exc:
            return PaymentResult("error", None, f"stripe refused the request: {exc.user_message}")
        if intent.status == "processing":
            # A retry under the same key gets Stripe's saved first answer, `processing` for
            # ever: read the intent itself to learn whether it has succeeded or failed since.
            try:
                intent = self._client.v1.payment_intents.retrieve(intent.id)
            except stripe.StripeError as exc:
                return PaymentResult("error", intent.id, f"stripe: {exc.user_message or exc}")
        if intent.status == "succeeded":
            return PaymentResult("succeeded", intent.id)
        if intent.status in ("requires_payment_method", "requires_action", "canceled"):
            return PaymentResult("declined", intent.id, f"payment intent {intent.status}")
        return PaymentResult("error", intent.id, f"payment intent {intent.status}")


def provider_from_settings(settings: Settings) -> PaymentProvider:
    """The provider the settings name (`payment_provider`), configured from them."""
    if settings.payment_provider == "stripe":
        key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else ""
        return StripeProvider(key, api_base=settings.stripe_api_base)
    if settings.payment_provider == "test":
        return TestProvider()
    return ManualProvider()
