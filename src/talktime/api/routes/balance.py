"""Credit: `GET /v1/balance`, `GET /v1/ledger` (and an admin's read of any account's),
`PUT /v1/settings/monthly-limit`, `PUT /v1/settings/low-balance`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote, unquote_plus

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from talktime import money
from talktime.api.auth import AccountId, Admin
from talktime.api.deps import Engine
from talktime.api.models import Amount, IdCursor, PageLimit, RowId, TimeInRange, problems
from talktime.service import accounts, users
from talktime.service import balance as service
from talktime.service.accounts import require_existing
from talktime.service.errors import InvalidRequestError

router = APIRouter(tags=["credit"])


class AutoRecharge(BaseModel):
    enabled: bool
    threshold: str | None = Field(description="Null until auto-recharge is set up.")
    amount: str | None = Field(description="Null until auto-recharge is set up.")
    disabled_reason: str | None
    customer: str | None = Field(
        None,
        description="The payment provider's customer that purchases and recharges charge "
        "(Stripe `cus_...`; `PUT /v1/settings/payment-method`), or null.",
    )
    payment_method: str | None = Field(
        None, description="The customer's saved payment method (Stripe `pm_...`), or null."
    )


class BalanceOut(BaseModel):
    currency: str = Field(examples=["USD"])
    free: str = Field(description="Free monthly credit left this period.")
    free_expires_at: str | None = Field(
        description="When the free credit left (monthly or promotional) first expires; null "
        "when none of it expires; already past when part of it lapsed while a call in "
        "progress reserves it (written off when the call ends)."
    )
    paid: str
    held: str = Field(description="Reserved by calls in progress.")
    available: str = Field(description="free + paid - held: what the next charge can use.")
    monthly_limit: str | None
    period_usage: str = Field(description="Paid credit used this period (against the limit).")
    period_start: str
    period_end: str
    low_balance_threshold: str | None = Field(
        None,
        description="A debit or expiry that takes `available` from at least this amount to "
        "under it queues one `balance.low` event; null: no such event. (Absent only in the "
        "replay of an answer stored before the field existed.)",
    )
    auto_recharge: AutoRecharge


class EntryOut(BaseModel):
    id: int
    transaction_id: str
    kind: str
    amount: str = Field(description="Signed: negative takes credit away.")
    grant_id: int | None
    hold_id: int | None
    reference: str | None
    lines: Any = Field(description="The priced lines that justify the entry.")
    created_at: str


class LedgerOut(BaseModel):
    currency: str
    entries: list[EntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class MonthlyLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monthly_limit: Amount | None = Field(description="Cap on paid credit per period; null: none.")
    user: str | None = Field(
        None,
        description="The user this request is made for; when given, that user needs "
        "`billing.manage`.",
    )


class LowBalanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low_balance_threshold: Amount | None = Field(
        description="Queue `balance.low` when a debit or expiry takes available credit from at "
        "least this amount to under it; null: never."
    )
    user: str | None = Field(
        None,
        description="The user this request is made for; when given, that user needs "
        "`billing.manage`.",
    )


@router.get("/v1/balance", response_model=BalanceOut, responses=problems(403))
def get_balance(account_id: AccountId, engine: Engine, request: Request) -> dict[str, Any]:
    """Free credit left and when it expires, paid, held, available, the monthly limit and the
    usage against it, the low-balance threshold, and auto-recharge."""
    return service.balance(engine, account_id, request.app.state.settings)


def _plus_kept(request: Request, name: str, decoded: str) -> str:
    """The query parameter ``name`` with a literal `+` read as a plus sign, not a space.

    References talktime writes never hold a space, and `number:+14155550100` is one of them:
    written unencoded in a URL it would otherwise be searched as `number: 14155550100` and find
    nothing. A space is still `%20`. (A repeated parameter was refused before.)
    """
    for part in request.scope.get("query_string", b"").decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if unquote_plus(key) == name:
            return unquote(value, errors="replace")
    return decoded


LedgerKind = Annotated[
    Literal["grant", "recharge", "usage", "expiry", "refund", "hold", "hold_release", "uncollected"]
    | None,
    Query(description="Only entries of this kind (an unknown kind is a 422, never an empty page)."),
]


LedgerReference = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Only entries with this reference (a message, call or recharge id, or "
        "`number:<E.164>`); a `+` in it is a plus sign, a space is `%20`.",
    ),
]


@router.get("/v1/ledger", response_model=LedgerOut, responses=problems(400, 403, 422))
def get_ledger(
    request: Request,
    account_id: AccountId,
    engine: Engine,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
    kind: LedgerKind = None,
    reference: LedgerReference = None,
    since: TimeInRange | None = None,
    until: TimeInRange | None = None,
) -> dict[str, Any]:
    """The account's ledger entries, newest first, with filters and a cursor (times without a
    zone are UTC)."""
    return _ledger_page(request, engine, account_id, cursor, limit, kind, reference, since, until)


@router.get(
    "/v1/admin/accounts/{account_id}/ledger",
    response_model=LedgerOut,
    responses=problems(400, 403, 404, 422),
    tags=["admin"],
)
def admin_get_ledger(
    request: Request,
    account_id: RowId,
    _admin: Admin,
    engine: Engine,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
    kind: LedgerKind = None,
    reference: LedgerReference = None,
    since: TimeInRange | None = None,
    until: TimeInRange | None = None,
) -> dict[str, Any]:
    """Admin: any account's ledger, as `GET /v1/ledger` answers its own (support looks up a
    disputed charge without a key of the customer's)."""
    require_existing(engine, account_id)
    return _ledger_page(request, engine, account_id, cursor, limit, kind, reference, since, until)


def _ledger_page(
    request: Request,
    engine: sa.Engine,
    account_id: int,
    cursor: str | None,
    limit: int,
    kind: str | None,
    reference: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    if since is not None and until is not None and until <= since:
        # swapped bounds read as "no entries" otherwise; /v1/usage refuses them the same way
        raise InvalidRequestError("`until` must be after `since`", field="until")
    if reference is not None:
        reference = _plus_kept(request, "reference", reference)
    return service.ledger(
        engine,
        account_id,
        cursor=cursor,
        limit=limit,
        kind=kind,
        reference=reference,
        since=since,
        until=until,
    )


@router.put("/v1/settings/monthly-limit", response_model=BalanceOut, responses=problems(403, 422))
def put_monthly_limit(
    body: MonthlyLimitIn, account_id: AccountId, engine: Engine, request: Request
) -> dict[str, Any]:
    """Set or remove the cap on paid credit used per billing period."""
    users.require_permission_of(engine, account_id, body.user, "billing.manage")
    accounts.require_active(engine, account_id)
    limit = None if body.monthly_limit is None else money.parse(body.monthly_limit)
    return service.set_monthly_limit(engine, request.app.state.settings, account_id, limit)


@router.put("/v1/settings/low-balance", response_model=BalanceOut, responses=problems(403, 422))
def put_low_balance(
    body: LowBalanceIn, account_id: AccountId, engine: Engine, request: Request
) -> dict[str, Any]:
    """Set or remove the available credit under which a debit queues `balance.low`."""
    users.require_permission_of(engine, account_id, body.user, "billing.manage")
    accounts.require_active(engine, account_id)
    threshold = (
        None if body.low_balance_threshold is None else money.parse(body.low_balance_threshold)
    )
    return service.set_low_balance_threshold(
        engine, request.app.state.settings, account_id, threshold
    )
