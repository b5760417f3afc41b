"""Shared API models: the problem document, money and phone-number fields, error responses."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from talktime import money
from talktime.ids import MAX_ID
from talktime.ops.clock import parse_iso
from talktime.wallet.book import MAX_WALLET_AMOUNT
from talktime.wallet.inputs import EARLIEST, LATEST

PROBLEM_JSON = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="talktime"'
"""The `WWW-Authenticate` header of every 401 (RFC 9110 §11.6.1: a 401 must carry one). One value
for every refused key, missing or wrong alike, as the problem's sentence is (RFC 6750 would
add `error="invalid_token"` for a wrong one: a hint this API does not give)."""

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id (1 to 2^62).")]

IdCursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{1,18}$", description="The `next_cursor` of the previous page."),
]
"""A list's cursor where rows are listed by numeric id (numbers, accounts, ledger entries)."""
RowCursor = Annotated[
    str | None, Query(max_length=40, description="The `next_cursor` of the previous page.")
]
"""A list's cursor that is the id of the previous page's last row (keys, users)."""
PageLimit = Annotated[int, Query(ge=1, le=500, description="At most this many on a page.")]
"""A numeric id in a path: bounded, so an id the database cannot hold is a 422, not a 500."""
AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]{1,6})?$"
"""What a money field takes, as documented in the OpenAPI schema; `money.parse` enforces it and
says in a sentence what is wrong with any other text."""
_E164 = re.compile(r"\+[1-9][0-9]{6,14}\Z")


class ProblemError(BaseModel):
    """One invalid input of a 422: a request field, or a place in an uploaded rate card."""

    model_config = ConfigDict(extra="allow")

    field: str | None = Field(
        None,
        description="The input at fault: a dotted body path, a query parameter or header "
        "name; '' for the body as a whole.",
    )
    file: str | None = Field(None, description="`invalid_rate_card`: the card's file.")
    line: int | None = Field(None, description="`invalid_rate_card`: its line (0: the file).")
    column: int | None = Field(None, description="`invalid_rate_card`: its column.")
    message: str


_MONEY_FACT = "Money, a decimal string in the account's currency."


class Problem(BaseModel):
    """An RFC 9457 problem document: every refusal and error has this shape. Besides the
    members every problem has, a refusal carries the facts a client may act on (the common ones
    are declared below; a refusal may carry others, named in its section of the README)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:talktime:problem:insufficient_credit"])
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable refusal code.")
    request_id: str = Field(description="The X-Request-ID of the request; quote it to support.")
    field: str | None = Field(None, description="422: the input at fault (as in `errors`).")
    errors: list[ProblemError] | None = Field(None, description="422: every invalid input.")
    needed: str | None = Field(None, description=f"402: the amount asked for. {_MONEY_FACT}")
    available: str | None = Field(None, description=f"402: the credit available. {_MONEY_FACT}")
    currency: str | None = Field(None, description="The currency of the money facts.")
    limit: str | int | None = Field(
        None,
        description="`monthly_limit_reached`: the monthly limit (money); `text_too_long`: the "
        "most characters a text may have.",
    )
    used: str | None = Field(
        None, description=f"`monthly_limit_reached`: paid usage this period. {_MONEY_FACT}"
    )
    reserved: str | None = Field(
        None, description=f"`monthly_limit_reached`: held for calls in progress. {_MONEY_FACT}"
    )
    max_duration_seconds: int | None = Field(
        None, description="`POST /v1/calls` 402: how long a call the credit covers now (0)."
    )


def _e164(value: str) -> str:
    if not _E164.match(value):
        raise ValueError("must be an E.164 number: '+', country code and digits (+14155550100)")
    return value


def _amount_text(value: Any) -> Any:
    """Refuse a JSON number, boolean or null in a money field with `money.parse`'s sentence
    (pydantic's "Input should be a valid string" did not say an amount is a decimal string)."""
    if not isinstance(value, str):
        try:
            money.parse(value)
        except money.MoneyError as exc:
            raise ValueError(str(exc)) from None
    return value


def _amount(value: str) -> str:
    try:
        parsed = money.parse(value)
    except money.MoneyError as exc:
        raise ValueError(str(exc)) from None
    if parsed > MAX_WALLET_AMOUNT:
        raise ValueError(f"must be at most {money.format(MAX_WALLET_AMOUNT)}")
    return value


E164 = Annotated[
    str,
    Field(
        examples=["+14155550100"],
        # in the schema only: as constraints they ran first and answered with the raw regex
        json_schema_extra={"minLength": 8, "maxLength": 16, "pattern": r"^\+[1-9][0-9]{6,14}$"},
    ),
    AfterValidator(_e164),
]
"""A phone number in E.164 form; anything else is a 422 with one sentence saying what is."""


def text_at_most(max_length: int) -> Callable[[Any], str]:
    """The validator of a message text field typed ``Annotated[Any, ...]``: a str of at most
    ``max_length`` characters, handed over as JSON decoded it. Typed Any so that a lone
    surrogate (``"\\ud83d"``) reaches the SMS code, which refuses it as 422 `invalid_text` with
    its position (a ``str`` field answers a bare `invalid_request`)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("Input should be a valid string")
        if len(value) > max_length:
            raise ValueError(f"String should have at most {max_length} characters")
        return value

    return check


CONFIGURED_MAX_LENGTH = "x-talktime-max-length-setting"
"""Marks a schema whose `maxLength` is a setting's value: `talktime.api.openapi` publishes the
app's configured value there and removes the mark."""


def text_schema(max_length: int, description: str, *, setting: str | None = None) -> WithJsonSchema:
    """The JSON schema of a `text_at_most` field: a string of at most ``max_length``, or of at
    most the value of ``setting`` (a `Settings` field) in the app's OpenAPI document."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "description": description}
    if setting is not None:
        schema[CONFIGURED_MAX_LENGTH] = setting
    return WithJsonSchema(schema)


Amount = Annotated[
    str,
    Field(
        examples=["25.00"],
        max_length=24,
        description="A decimal amount of money (at most 6 decimals), never a float.",
        # in the schema only: as a constraint it ran first and answered with the raw regex
        json_schema_extra={"pattern": AMOUNT_PATTERN},
    ),
    BeforeValidator(_amount_text),
    AfterValidator(_amount),
]
"""A non-negative decimal money string."""


def _positive(value: str) -> str:
    if money.parse(_amount(value)) <= 0:
        raise ValueError("must be more than zero")
    return value


PositiveAmount = Annotated[
    str,
    Field(
        examples=["25.00"],
        max_length=24,
        description="A decimal amount of money above zero (at most 6 decimals).",
        json_schema_extra={"pattern": AMOUNT_PATTERN},
    ),
    BeforeValidator(_amount_text),
    AfterValidator(_positive),
]
"""A positive decimal money string."""


_NUMBER = re.compile(r"\s*[+-]?[0-9]*\.?[0-9]+\.?\s*\Z")


def _iso_time(value: Any) -> Any:
    """Read a time as `talktime usage` does (`parse_iso`: `20261001` is that day in both);
    refuse a number: pydantic read a JSON number or a string of digits as Unix seconds, or as
    milliseconds past 2e10 (20000000001 was 1970-08-20). Other text goes on to pydantic."""
    if isinstance(value, bool):
        return value  # pydantic refuses it as no datetime
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except ValueError:
            pass
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError(
            "must be an ISO 8601 time such as 2026-10-01T12:00:00Z or a date such as "
            "2026-10-01 (UTC when no offset is given), not a Unix timestamp"
        )
    return value


def _utc(value: datetime) -> datetime:
    """A time without a zone is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            f"{value.isoformat()} is out of range: times from 1970-01-01 up to, not including, "
            "9000-01-01 (UTC) are accepted"
        )
    return value


Time = Annotated[datetime, BeforeValidator(_iso_time), AfterValidator(_utc)]
"""An ISO 8601 time (UTC when it has no zone); a number is a 422, not a Unix timestamp."""

TimeInRange = Annotated[Time, AfterValidator(_in_range)]
"""A `Time` the wallet accepts: from 1970-01-01 up to, not including, 9000-01-01 (UTC), else a
422 naming it."""


def fmt(amount: int) -> str:
    """Micro-units as the API's decimal string."""
    return money.format(amount, 4)


_DESCRIPTIONS = {
    400: "Bad request: the request cannot be acted on as written",
    401: "Missing, malformed, unknown or revoked API key",
    402: "Not enough credit, or the monthly limit is reached; nothing was charged",
    403: "Forbidden: inactive subscription, missing permission or wrong kind of key",
    404: "Not found (another account's resources answer the same)",
    409: "Conflict: idempotency key reused for another request, or wrong state",
    413: "Request body too large",
    422: "Invalid input; the problem names the field",
    503: "The payment provider is unavailable; retry with the same Idempotency-Key",
}


def problems(
    *statuses: int, described: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses (plus 400, 401, 413 and 422 always);
    ``described`` replaces the usual description of a status where the route means another."""
    wanted = sorted({400, 401, 413, 422, *statuses})
    own = described or {}
    return {
        status: {
            "model": Problem,
            "description": own.get(status) or _DESCRIPTIONS.get(status, "Error"),
            # documented as problem+json (see talktime.api.openapi)
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in wanted
    }


class Line(BaseModel):
    """One priced line: what was priced, how much of it, at which rate, for how much."""

    kind: str = Field(examples=["sms"])
    description: str
    quantity: str = Field(examples=["2"])
    unit: str = Field(examples=["segments"])
    unit_price: str = Field(examples=["0.0100"])
    unrounded: str
    amount: str = Field(examples=["0.0200"])
    rounding: str
    rate: str = Field(description="Rate card version, file and line that priced it.")
    seconds: int | None = None


class BalanceSnapshot(BaseModel):
    """The account's credit right after the operation."""

    currency: str = Field(examples=["USD"])
    free: str
    paid: str
    held: str
    available: str


REPLAYED_HEADER = "Idempotent-Replayed"
"""Set to `true` on an answer replayed for an Idempotency-Key that had already answered (the
body is the original's, byte for byte); the metrics do not count such a request as a charge."""


def stored(status: int, body: str, *, replayed: bool = False) -> Response:
    """A stored JSON response (idempotent replays send these exact bytes, marked with
    `REPLAYED_HEADER`)."""
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return Response(
        content=body, status_code=status, media_type="application/json", headers=headers
    )


def none_as_empty(value: list[Any] | None) -> list[Any]:
    """`null` for a list says none, as `[]` does (a call's `transfers`, like `forward: null`):
    both are the same request under one key."""
    return [] if value is None else value
