"""Phone numbers: `POST /v1/numbers` (first month charged), `DELETE /v1/numbers/{id}`, list."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from talktime.api.auth import AccountId
from talktime.api.deps import Engine, IdempotencyKey
from talktime.api.models import (
    E164,
    BalanceSnapshot,
    IdCursor,
    Line,
    PageLimit,
    RowId,
    problems,
    stored,
)
from talktime.service import numbers

router = APIRouter(tags=["numbers"])


class NumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    e164: E164


class NumberOut(BaseModel):
    id: int
    e164: str
    country: str
    type: str = Field(examples=["mobile"])
    sms_enabled: bool
    voice_enabled: bool
    status: Literal["active", "suspended", "released"]
    monthly_price: str
    currency: str
    rate: str
    created_at: str
    released_at: str | None


class NumberAdded(NumberOut):
    charged: str = Field(description="The first month's rental, charged now.")
    lines: list[Line]
    balance: BalanceSnapshot


class NumberList(BaseModel):
    numbers: list[NumberOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


NumberStatusFilter = Annotated[
    Literal["active", "suspended", "released"] | None,
    Query(description="Only numbers in this state."),
]


@router.post(
    "/v1/numbers", status_code=201, response_model=NumberAdded, responses=problems(402, 403, 409)
)
def add_number(
    body: NumberIn, request: Request, account_id: AccountId, engine: Engine, key: IdempotencyKey
) -> Response:
    """Add a number: type and SMS capability from its classification, monthly price from the
    rate card, the first month charged at once (402 if the credit does not cover it)."""
    result = numbers.add_number(engine, request.app.state.settings, account_id, body.e164, key)
    return stored(result.status, result.body, replayed=result.replayed)


@router.get("/v1/numbers", response_model=NumberList, responses=problems(403))
def list_numbers(
    request: Request,
    account_id: AccountId,
    engine: Engine,
    cursor: IdCursor = None,
    limit: PageLimit = 100,
    status: NumberStatusFilter = None,
) -> dict[str, Any]:
    """The account's numbers, oldest first, a page at a time (optionally only one state)."""
    return numbers.list_numbers(
        engine,
        request.app.state.settings,
        account_id,
        status=status,
        cursor=None if cursor is None else int(cursor),
        limit=limit,
    )


@router.delete("/v1/numbers/{number_id}", response_model=NumberOut, responses=problems(403, 404))
def release_number(
    number_id: RowId,
    request: Request,
    account_id: AccountId,
    engine: Engine,
) -> dict[str, Any]:
    """Release a number: no rental from the next period on."""
    return numbers.release_number(engine, request.app.state.settings, account_id, number_id)
