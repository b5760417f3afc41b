"""`POST /v1/credits` (buy credit) and `PUT /v1/settings/auto-recharge`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from talktime import money
from talktime.api.auth import AccountId
from talktime.api.deps import Engine, IdempotencyKey
from talktime.api.models import Amount, PositiveAmount, problems, stored
from talktime.api.routes.balance import BalanceOut
from talktime.service import credits, users

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
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    threshold: Amount = Field(description="Recharge when paid credit falls under this.")
    amount: PositiveAmount = Field(
        description="How much each recharge buys: whole cents when `enabled` (422 "
        "`payment_setup_invalid` otherwise)."
    )
    user: str | None = Field(
        None,
        description="The user this request is made for; when given, that user needs "
        "`billing.manage`.",
    )


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
    body: AutoRechargeIn, account_id: AccountId, engine: Engine
) -> dict[str, Any]:
    """Turn auto-recharge on or off and set its threshold and amount."""
    users.require_permission_of(engine, account_id, body.user, "billing.manage")
    return credits.set_auto_recharge(
        engine,
        account_id,
        enabled=body.enabled,
        threshold=money.parse(body.threshold),
        amount=money.parse(body.amount),
    )
