"""Usage reports and monthly statements of the caller's account: JSON by default, CSV with
`Accept: text/csv`, and the statement also as a PDF with `Accept: application/pdf`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from talktime.api.auth import AccountId
from talktime.api.models import Time, problems
from talktime.ops import pdf, statements, usage
from talktime.ops.clock import from_datetime, now_us

router = APIRouter(tags=["reports"])

CSV = "text/csv"
PDF = "application/pdf"


class UsageRow(BaseModel):
    model_config = {"extra": "allow"}

    count: int
    quantity: int = Field(description="SMS segments, calls or number rentals")
    amount: str = Field(description="decimal string in the account's currency")


class UsageReport(BaseModel):
    currency: str = Field(examples=["USD"], description="The currency of every amount.")
    since: str | None
    until: str | None
    group_by: list[str]
    rows: list[UsageRow]


class Money3(BaseModel):
    free: str
    paid: str
    total: str


class StatementLine(BaseModel):
    section: str = Field(description="credit, usage, expiry or refund")
    label: str
    free: str
    paid: str
    total: str
    entries: int


class StatementOut(BaseModel):
    account_id: int
    account_name: str
    currency: str
    period: str
    start: str | None
    end: str | None
    opening: Money3
    lines: list[StatementLine]
    closing: Money3
    uncollected: str


JSON = "application/json"
VARY = {"vary": "Accept"}
"""The answer depends on the request's Accept: a cache must keep one per Accept."""


def _accepted(header: str) -> list[tuple[str, str, float, int]]:
    """The media ranges of an Accept header: (type, subtype, q, position); a range without a
    '/' is skipped and an unreadable q counts as 0 (not acceptable)."""
    ranges = []
    for position, item in enumerate(header.split(",")):
        media, *params = item.split(";")
        kind, slash, sub = media.strip().lower().partition("/")
        if not slash:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)  # a preference weight, never money
                except ValueError:
                    q = 0.0
        ranges.append((kind, sub, q, position))
    return ranges


def _preferred(request: Request, offered: tuple[str, ...]) -> str:
    """The offered media type the request's Accept prefers (RFC 9110 12.5.1): each offered
    type takes the q of the most specific range matching it (`text/csv`, then `text/*`, then
    `*/*`); the highest q wins, then the more specific match, then the range named first,
    then the order offered. The first offered (JSON) when there is no Accept or it accepts
    none of them: a substring test used to send CSV for `text/csv;q=0`."""
    header = request.headers.get("accept")
    if not header:
        return offered[0]
    ranges = _accepted(header)
    scored = []
    for index, media in enumerate(offered):
        kind, _, sub = media.partition("/")
        best: tuple[int, float, int] | None = None  # (specificity, q, position)
        for r_kind, r_sub, q, position in ranges:
            if (r_kind, r_sub) == (kind, sub):
                specificity = 2
            elif (r_kind, r_sub) == (kind, "*"):
                specificity = 1
            elif (r_kind, r_sub) == ("*", "*"):
                specificity = 0
            else:
                continue
            if best is None or specificity > best[0]:
                best = (specificity, q, position)
        if best is not None and best[1] > 0:
            scored.append((best[1], best[0], -best[2], -index, media))
    return max(scored)[-1] if scored else offered[0]


@router.get(
    "/v1/usage",
    response_model=UsageReport,
    responses={200: {"content": {CSV: {}}}, **problems(403)},
)
def get_usage(
    account: AccountId,
    request: Request,
    since: Annotated[
        Time | None,
        Query(
            description="start, inclusive (default: the start, UTC, of the month `until` "
            "falls in: this month without `until`)"
        ),
    ] = None,
    until: Annotated[Time | None, Query(description="end, exclusive (default: now)")] = None,
    group_by: Annotated[
        list[str] | None,
        Query(
            description="any of day, channel, direction, country, number_type, user, "
            "phone_number; repeat the parameter for several"
        ),
    ] = None,
) -> Any:
    """Counts and totals of messages, calls and number rentals, grouped as asked."""
    now = now_us()
    start, end = usage.default_range(
        now, None if since is None else _at(since), None if until is None else _at(until)
    )
    dims = [d for part in group_by or [] for d in part.split(",") if d]
    groups = usage.usage(request.app.state.engine, account, start, end, dims)
    if _preferred(request, (JSON, CSV)) == CSV:
        return Response(
            usage.to_csv(groups, dims), media_type=f"{CSV}; charset=utf-8", headers=VARY
        )
    return JSONResponse(
        usage.report(request.app.state.engine, account, start, end, groups, dims), headers=VARY
    )


def _at(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return from_datetime(moment)


@router.get(
    "/v1/statements/{period}",
    response_model=StatementOut,
    responses={200: {"content": {CSV: {}, PDF: {}}}, **problems(403, 404)},
)
def get_statement(
    period: Annotated[
        str,
        # The pattern is documented, not enforced here: `statements.period_bounds` refuses every
        # other period as `invalid_period` with a sentence (a failed pattern would be an
        # `invalid_request` quoting the regex).
        Path(
            description="A calendar month (UTC), 1970-01 to 9999-11.",
            examples=["2026-10"],
            json_schema_extra={"pattern": "^[0-9]{4}-[0-9]{2}$"},
        ),
    ],
    account: AccountId,
    request: Request,
) -> Any:
    """The month's statement: opening, credit, usage by channel, expiries, refunds, closing."""
    stmt = statements.statement(request.app.state.engine, account, period)
    chosen = _preferred(request, (JSON, PDF, CSV))
    if chosen == PDF:
        return Response(
            pdf.render(stmt),
            media_type=PDF,
            headers={
                "content-disposition": f'inline; filename="statement-{period}.pdf"',
                **VARY,
            },
        )
    if chosen == CSV:
        return Response(stmt.to_csv(), media_type=f"{CSV}; charset=utf-8", headers=VARY)
    return JSONResponse(stmt.to_dict(), headers=VARY)
