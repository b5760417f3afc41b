"""`POST /v1/messages` (send-SMS authorization) and `POST /v1/messages/inbound`."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from starlette.requests import ClientDisconnect

from talktime.api import auth, deps
from talktime.api.auth import AccountId, bearer
from talktime.api.deps import Engine, IdempotencyKey
from talktime.api.middleware import JSON_BODY, UNPARSED
from talktime.api.models import (
    E164,
    BalanceSnapshot,
    Line,
    problems,
    stored,
    text_at_most,
    text_schema,
)
from talktime.config import MAX_SMS_TEXT_CHARS
from talktime.service import messages

router = APIRouter(tags=["messages"])

MediaUrl = Annotated[str, Field(max_length=2000)]
MAX_TEXT = MAX_SMS_TEXT_CHARS
"""A bound past the body limit (64 KiB), so that any longer text than `sms_max_text_chars`
reaches the service and is refused as `text_too_long` with that limit (the OpenAPI document
publishes the configured limit as `maxLength`)."""
_LIMIT = "sms_max_text_chars"
OutboundText = Annotated[
    Any,
    AfterValidator(text_at_most(MAX_TEXT)),
    text_schema(
        MAX_TEXT,
        "At most `sms_max_text_chars` characters (1,600 by default); a longer text is 422 "
        "`text_too_long`.",
        setting=_LIMIT,
    ),
]
InboundText = Annotated[
    Any,
    AfterValidator(text_at_most(MAX_TEXT)),
    text_schema(
        MAX_TEXT,
        "The message received; at most `sms_max_text_chars` characters (1,600 by default), "
        "a longer text is 422 `text_too_long`.",
        setting=_LIMIT,
    ),
]


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: E164 = Field(alias="from", description="The account's SMS-enabled sending number.")
    to: E164
    text: OutboundText
    user: str = Field(min_length=1, max_length=40, description="The user sending it.")
    media: list[MediaUrl] | None = Field(None, max_length=10, description="Refused: no MMS.")
    smart_encoding: StrictBool = Field(False, description="Replace look-alikes to stay in GSM-7.")


class InboundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: E164 = Field(alias="from", description="Who sent it.")
    to: E164 = Field(description="The account's number that received it.")
    text: InboundText
    media: list[MediaUrl] | None = Field(None, max_length=10)


class MessageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    direction: Literal["outbound", "inbound"]
    from_: str = Field(alias="from")
    to: str
    user: str | None
    status: Literal["accepted", "received"]
    encoding: str = Field(examples=["GSM-7"])
    segments: int
    amount: str = Field(examples=["0.0200"])
    currency: str
    from_free: str
    from_paid: str
    lines: list[Line]
    rate_card: str
    balance: BalanceSnapshot | None
    created_at: str


async def send_message(
    body: MessageIn,
    request: Request,
    account_id: AccountId,
    engine: Engine,
    key: IdempotencyKey,
) -> Response:
    """Authorize an outgoing SMS: price it and charge it all or nothing.

    Refusals: 402 `insufficient_credit` (with `needed` and `available`) or
    `monthly_limit_reached`; 403 `subscription_inactive` or `permission_denied`; 409
    `idempotency_conflict`; 422 `mms_not_supported`, `number_not_sms_enabled`,
    `sms_cross_country`, `text_too_long`, `invalid_text` (a lone surrogate), `unknown_user`.
    A replay of the same key returns the original response. The route awaits the group commit
    on the event loop (no thread waits).
    """
    req = messages.SendSms(
        from_=body.from_,
        to=body.to,
        text=body.text,
        user=body.user,
        media=tuple(body.media or ()),
        smart_encoding=body.smart_encoding,
    )
    settings = request.app.state.settings
    result = await messages.send_sms_async(engine, settings, account_id, req, key)
    return stored(result.status, result.body, replayed=result.replayed)


class SendRoute(APIRoute):
    """`POST /v1/messages` with a direct path for the usual request.

    FastAPI's generic handler solves the route's dependencies on every request (a fifth of a
    served send's CPU on the event loop, where it also competes for the GIL with the group
    committer). When a request has the usual shape (no query string, a JSON body that
    `MessageIn` accepts, one well-formed `Idempotency-Key` and a bearer token) the handler
    reads it, then calls the same dependencies, in the order FastAPI runs them, and
    `send_message` itself. Any other request goes to the generic handler, so every refusal
    of a malformed request is FastAPI's own; the OpenAPI document is the route's as declared.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        generic = super().get_route_handler()

        async def handler(request: Request) -> Response:
            direct = await _direct_send(request)
            return direct if direct is not None else await generic(request)

        return handler


async def _direct_send(request: Request) -> Response | None:
    """The answer to a usual send request, or None for the generic handler."""
    if request.scope.get("query_string"):
        return None
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    given = request.headers.getlist("idempotency-key")
    if len(given) != 1 or len(given[0]) > deps.KEY_MAX_LENGTH:
        return None
    try:
        raw = await request.body()
    except ClientDisconnect:
        # the client hung up mid-body: the generic handler's answer (FastAPI's unreadable
        # body, a 422 nobody reads), not an unexpected error logged as a 500
        return None
    document = request.scope.get("state", {}).get(JSON_BODY, UNPARSED)  # the middleware's read
    try:
        body = MessageIn.model_validate(json.loads(raw) if document is UNPARSED else document)
    except (ValueError, ValidationError, RecursionError):
        # malformed JSON (JSONDecodeError, UnicodeDecodeError, nesting deeper than the decoder
        # recurses) or a body MessageIn refuses: the generic handler's answer
        return None
    credentials = await bearer(request)
    who = await auth.principal(request, credentials)
    account = await auth.account_id(who)
    key = await deps.idempotency_key(request, given[0])
    return await send_message(body, request, account, request.app.state.engine, key)


router.add_api_route(
    "/v1/messages",
    send_message,
    methods=["POST"],
    status_code=201,
    response_model=MessageOut,
    responses=problems(402, 403, 409),
    route_class_override=SendRoute,
)


@router.post(
    "/v1/messages/inbound",
    status_code=201,
    response_model=MessageOut,
    responses=problems(402, 403, 409),
)
def record_inbound(
    body: InboundIn,
    request: Request,
    account_id: AccountId,
    engine: Engine,
    key: IdempotencyKey,
) -> Response:
    """Record a message received on one of the account's numbers (charged only if the
    account's rate card prices inbound messages).

    Refusals, first one wins: 403 `subscription_inactive`; 422 `mms_not_supported`,
    `text_too_long` or `invalid_text`, `number_not_sms_enabled` (`to` is not an active,
    SMS-enabled number of the account), `sms_cross_country` (the sender's country differs,
    except US <-> CA); 402 `insufficient_credit` when the card charges it; 409
    `idempotency_conflict`. A replay of the same key returns the original response."""
    req = messages.InboundSms(
        from_=body.from_, to=body.to, text=body.text, media=tuple(body.media or ())
    )
    result = messages.record_inbound(engine, request.app.state.settings, account_id, req, key)
    return stored(result.status, result.body, replayed=result.replayed)
