"""Calls: authorize (hold the first increments), extend, complete with the legs, read."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from talktime.api.auth import AccountId
from talktime.api.deps import Engine, IdempotencyKey
from talktime.api.models import E164, BalanceSnapshot, Line, none_as_empty, problems, stored
from talktime.service import calls
from talktime.service.common import to_json

router = APIRouter(tags=["calls"])

Seconds = Annotated[
    int,
    # strict: `true` or `"70"` is not a duration (lax parsing billed `true` as one second)
    Field(strict=True, ge=0, le=7 * 24 * 3600, description="Seconds (0: unanswered)."),
]
CallId = Annotated[str, Path(max_length=40)]


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    direction: Literal["outbound", "inbound"]
    from_: E164 = Field(
        alias="from",
        description="Outbound: the caller ID (priced by its country). Inbound: the caller.",
    )
    to: E164 = Field(description="Outbound: the called number. Inbound: the receiving number.")
    user: str = Field(min_length=1, max_length=40)


class ForwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: E164
    duration: Seconds


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["user", "external"]
    to: E164
    outbound_duration: Seconds
    inbound_duration: Seconds = 0
    caller_id: E164 | None = None


class CallCompleteIn(BaseModel):
    """What happened: the original leg's duration, forwarding, transfers."""

    model_config = ConfigDict(extra="forbid")

    duration: Seconds
    forward: ForwardIn | None = None
    transfers: Annotated[list[TransferIn] | None, AfterValidator(none_as_empty)] = Field(
        default_factory=list, max_length=100
    )


class CallOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    direction: Literal["outbound", "inbound"]
    from_: str = Field(alias="from")
    to: str
    user: str | None
    state: Literal["authorized", "completed"]
    max_duration_seconds: int = Field(description="Call time the held credit covers now.")
    held: str = Field(description="Credit held for the call so far.")
    hold_state: Literal["pending", "settled", "voided", "expired"] | None = Field(
        default=None,
        description="The hold behind `held`: `pending` until `hold_expires_at`, `settled` once "
        "the call completed, `expired` once the worker released it past its deadline (nothing "
        "is held then: an extend is 409, completing still bills); null for a call without one.",
    )
    hold_expires_at: str | None = Field(
        default=None, description="When the held credit lapses unless the call is extended."
    )
    amount: str | None = Field(description="What the call cost, once completed.")
    uncollected: str | None
    currency: str
    rate_card: str
    lines: list[Line]
    authorized_at: str
    extended_at: str | None
    completed_at: str | None
    balance: BalanceSnapshot | None


@router.post(
    "/v1/calls", status_code=201, response_model=CallOut, responses=problems(402, 403, 409)
)
def authorize_call(
    body: CallIn, request: Request, account_id: AccountId, engine: Engine, key: IdempotencyKey
) -> Response:
    """Authorize a call: hold the cost of its first billing increments and return
    `max_duration_seconds`. 402 `insufficient_credit` (with `max_duration_seconds: 0`) when
    not even the first increment is covered."""
    req = calls.CallRequest(body.direction, body.from_, body.to, body.user)
    result = calls.authorize_call(engine, request.app.state.settings, account_id, req, key)
    return stored(result.status, result.body, replayed=result.replayed)


class ExtendIn(BaseModel):
    """An extend takes no fields: `{}` or no body (a field sent is refused, not ignored: an
    extend always reserves the next increments the credit covers)."""

    model_config = ConfigDict(extra="forbid")


@router.post(
    "/v1/calls/{call_id}/extend", response_model=CallOut, responses=problems(402, 403, 404, 409)
)
def extend_call(
    call_id: CallId,
    request: Request,
    account_id: AccountId,
    engine: Engine,
    key: IdempotencyKey,
    body: ExtendIn | None = None,
) -> Response:
    """Hold the next increments of a long call; returns the new `max_duration_seconds`. The
    body is empty (`{}` or none)."""
    result = calls.extend_call(engine, request.app.state.settings, account_id, call_id, key)
    return stored(result.status, result.body, replayed=result.replayed)


@router.post(
    "/v1/calls/{call_id}/complete", response_model=CallOut, responses=problems(402, 403, 404, 409)
)
def complete_call(
    call_id: CallId,
    body: CallCompleteIn,
    request: Request,
    account_id: AccountId,
    engine: Engine,
    key: IdempotencyKey,
) -> Response:
    """Price every leg of the call (original, forwarding, transfers), settle the hold with it
    and release the rest."""
    result = calls.complete_call(
        engine,
        request.app.state.settings,
        account_id,
        call_id,
        body.model_dump(exclude_none=True),
        key,
    )
    return stored(result.status, result.body, replayed=result.replayed)


@router.get("/v1/calls/{call_id}", response_model=CallOut, responses=problems(403, 404))
def get_call(call_id: CallId, account_id: AccountId, engine: Engine) -> Response:
    """A call of the key's account."""
    return stored(200, to_json(calls.get_call(engine, account_id, call_id)))
