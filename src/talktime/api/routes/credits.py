"""`POST /v1/credits` (buy credit), `PUT /v1/settings/auto-recharge` and
`PUT /v1/settings/payment-method`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from talktime import money
from talktime.api.auth import AccountId
from talktime.api.deps import Engine, IdempotencyKey
from talktime.api.models import Amount, PositiveAmount, problems, stored
from talktime.api.routes.balance import BalanceOut
from talktime.service import accounts, credits, users

router = APIRouter(tags=["credit"])


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveAmount = Field(
        description='Credit to buy, e.g. "25.00": whole cents (a card payment cannot take a '
        "fraction of a cent: 422 `payment_setup_invalid`)."
    )
    user: str | None = Field(
        None,
        description="The user this request is made for; when given, that user needs "
        "`billing.manage`.",
    )


class PurchaseOut(BaseModel):
    grant_id: int
    amount: str
    source: str | None
    transaction_id: str
    balance: BalanceOut
    created_at: str


class AutoRechargeIn(BaseModel):
    """`threshold` and `amount` are required when `enabled` is true; turning auto-recharge off
    may leave them out, which keeps the stored ones."""

    model_config = ConfigDict(
        extra="forbid",
        # published: when `enabled` is true, both are required (and not null)
        json_schema_extra={
            "if": {"properties": {"enabled": {"const": True}}},
            "then": {
                "required": ["threshold", "amount"],
                "properties": {"threshold": {"type": "string"}, "amount": {"type": "string"}},
            },
        },
    )

    enabled: StrictBool
    threshold: Amount | None = Field(
        None,
        validate_default=True,
        description="Recharge when paid credit falls under this. Required when `enabled` is "
        "true; when turning it off, leave it out to keep the stored one.",
    )
    amount: Amount | None = Field(
        None,
        validate_default=True,
        description="How much each recharge buys. Required when `enabled` is true, and then "
        "above zero and whole cents (422 `payment_setup_invalid` otherwise); when turning it "
        "off, leave it out (or send 0) to keep the stored one.",
    )
    user: str | None = Field(
        None,
        description="The user this request is made for; when given, that user needs "
        "`billing.manage`.",
    )

    @field_validator("threshold", "amount")
    @classmethod
    def _required_when_enabled(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Turning auto-recharge on needs both, and an amount above zero (as before)."""
        if info.data.get("enabled") is not True:
            return value
        if value is None:
            raise ValueError("required when `enabled` is true")
        if info.field_name == "amount" and money.parse(value) <= 0:
            raise ValueError("must be more than zero")
        return value


@router.post(
    "/v1/credits",
    status_code=201,
    response_model=PurchaseOut,
    responses=problems(
        402,
        403,
        409,
        422,
        503,
        described={
            402: "The card payment was declined (`payment_declined`); no credit was granted",
            409: "The account's provider takes no automatic payment "
            "(`automatic_payment_unavailable`), or the Idempotency-Key was used for another "
            "request (`idempotency_conflict`)",
        },
    ),
)
def purchase(
    body: PurchaseIn, request: Request, account_id: AccountId, engine: Engine, key: IdempotencyKey
) -> Response:
    """Buy credit through the account's payment provider; the credit is granted only after
    the payment succeeded, and a replayed key never pays twice (it answers the original
    response, byte for byte)."""
    result = credits.purchase(
        engine,
        request.app.state.settings,
        account_id,
        money.parse(body.amount),
        key,
        user=body.user,
    )
    return stored(result.status, result.body, replayed=result.replayed)


@router.put("/v1/settings/auto-recharge", response_model=BalanceOut, responses=problems(403, 422))
def put_auto_recharge(
    body: AutoRechargeIn, account_id: AccountId, engine: Engine, request: Request
) -> dict[str, Any]:
    """Turn auto-recharge on or off and set its threshold and amount (both required to turn
    it on; left out when turning it off, the stored ones are kept)."""
    users.require_permission_of(engine, account_id, body.user, "billing.manage")
    if body.enabled:  # turning it off stops card payments: never refused for the subscription
        accounts.require_active(engine, account_id)
    return credits.set_auto_recharge(
        engine,
        account_id,
        enabled=body.enabled,
        threshold=None if body.threshold is None else money.parse(body.threshold),
        # off, an amount of 0 is no amount (the wallet stores none): the stored one is kept
        amount=(money.parse(body.amount) or None) if body.amount is not None else None,
        settings=request.app.state.settings,
    )


ProviderReference = Annotated[
    str | None,
    Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$"),
]


class PaymentMethodIn(BaseModel):
    """Both members are required: null clears one (a left-out member is a 422, never a silent
    clear)."""

    model_config = ConfigDict(extra="forbid")

    customer: ProviderReference = Field(
        description="The payment provider's customer (Stripe `cus_...`), or null.",
        examples=["cus_Q2x9"],
    )
    payment_method: ProviderReference = Field(
        description="The customer's saved payment method that purchases and recharges charge "
        "off-session (Stripe `pm_...`), or null.",
        examples=["pm_1Q2x9"],
    )
    user: str | None = Field(
        None,
        description="The user this request is made for; when given, that user needs "
        "`billing.manage`.",
    )


@router.put("/v1/settings/payment-method", response_model=BalanceOut, responses=problems(403, 422))
def put_payment_method(
    body: PaymentMethodIn, account_id: AccountId, engine: Engine, request: Request
) -> dict[str, Any]:
    """Save the card purchases and auto-recharges charge (the provider's customer and payment
    method); null clears one. Allowed whatever the subscription's state: a new card is how a
    past-due account pays again."""
    users.require_permission_of(engine, account_id, body.user, "billing.manage")
    return credits.set_payment_method(
        engine,
        account_id,
        customer=body.customer,
        payment_method=body.payment_method,
        settings=request.app.state.settings,
    )
