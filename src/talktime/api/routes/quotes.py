"""`POST /v1/quotes/sms` and `POST /v1/quotes/calls`: price without charging.

Thin routes over `talktime.rating`; numbers must be E.164, money comes back as decimal strings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool
from pydantic.config import JsonDict

from talktime.api.models import E164, Problem, none_as_empty, text_at_most, text_schema
from talktime.config import MAX_SMS_TEXT_CHARS
from talktime.rating import Call, RateCard, price_call
from talktime.rating.calls import MAX_DURATION_S
from talktime.service import cards, messages

router = APIRouter(prefix="/v1/quotes", tags=["quotes"])

_NO_SUCH_CARD: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No rate card has the `card` name given"}
}
"""Quotes need no API key, so only the card lookup adds a refusal to the input errors."""

QuoteText = Annotated[
    Any,
    AfterValidator(text_at_most(MAX_SMS_TEXT_CHARS)),
    text_schema(
        MAX_SMS_TEXT_CHARS,
        "The message text: at most `sms_max_text_chars` characters (1,600 by default), as a "
        "send; a longer text is 422 `text_too_long`.",
        setting="sms_max_text_chars",
    ),
]

E164_HELP = "E.164: '+', country code and number, digits only (+14155550123)"
WEEK: JsonDict = {"maximum": MAX_DURATION_S}
"""A leg's bound, documented only: the rating code refuses a longer leg as `invalid_call`."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SmsQuoteRequest(_Body):
    """An SMS to price."""

    from_: E164 = Field(alias="from", description=E164_HELP)
    to: E164 = Field(description=E164_HELP)
    text: QuoteText
    direction: Literal["outbound", "inbound"] = "outbound"
    smart_encoding: StrictBool = Field(False, description="Replace look-alikes to stay in GSM-7.")
    card: str | None = Field(None, description="Rate card name (default: setting rate_card).")


class ForwardBody(_Body):
    """The call was forwarded to `to` for `duration` seconds (inbound calls only)."""

    to: E164 = Field(description=E164_HELP)
    duration: int = Field(
        strict=True, ge=0, description="Seconds of the forwarding leg.", json_schema_extra=WEEK
    )


class TransferBody(_Body):
    """One transfer: to a user (two legs) or to an external number (one outbound leg)."""

    kind: Literal["user", "external"]
    to: E164 = Field(description=E164_HELP)
    outbound_duration: int = Field(
        strict=True,
        ge=0,
        description="Seconds of the transferring outbound leg.",
        json_schema_extra=WEEK,
    )
    inbound_duration: int = Field(
        0,
        strict=True,
        ge=0,
        description="Seconds the receiving user talked.",
        json_schema_extra=WEEK,
    )
    caller_id: E164 | None = Field(None, description="Caller ID of the outbound leg.")


class CallQuoteRequest(_Body):
    """A call to price: what happened on it."""

    direction: Literal["outbound", "inbound"]
    from_: E164 = Field(alias="from", description="Caller ID (outbound) or caller (inbound).")
    to: E164 = Field(description="Called (outbound) or receiving (inbound) number.")
    duration: int = Field(
        strict=True,
        ge=0,
        description="Seconds of the original leg (0: not answered).",
        json_schema_extra=WEEK,
    )
    forward: ForwardBody | None = None
    transfers: Annotated[list[TransferBody] | None, AfterValidator(none_as_empty)] = Field(
        default_factory=list, max_length=100
    )
    card: str | None = Field(None, description="Rate card name (default: setting rate_card).")


class QuoteLineBody(BaseModel):
    """One priced line; money as decimal strings."""

    kind: Literal["sms", "call_leg", "number_rental"]
    description: str
    quantity: str
    unit: Literal["segments", "minutes", "months"]
    unit_price: str
    unrounded: str
    amount: str
    rounding: str
    rate: str = Field(description="card@version:file:line of the rate used")
    seconds: int | None = None


class QuoteBody(BaseModel):
    """A quote: the total and its lines, priced with one rate card version."""

    card: str
    version: str
    currency: str
    total: str = Field(description="Decimal string, such as 0.0300")
    lines: list[QuoteLineBody]


def _card(request: Request, name: str | None) -> RateCard:
    return cards.card_named(name, request.app.state.settings)


@router.post(
    "/sms", response_model=QuoteBody, response_model_exclude_none=True, responses=_NO_SUCH_CARD
)
def quote_sms(body: SmsQuoteRequest, request: Request) -> dict[str, Any]:
    """Price one SMS: segments x the rate of the other party's country, rounded per the card."""
    quote = messages.quote_sms(
        _card(request, body.card),
        body.from_,
        body.to,
        body.text,
        body.direction,
        request.app.state.settings,
        smart_encoding=body.smart_encoding,
    )
    return quote.to_dict()


@router.post(
    "/calls", response_model=QuoteBody, response_model_exclude_none=True, responses=_NO_SUCH_CARD
)
def quote_call(body: CallQuoteRequest, request: Request) -> dict[str, Any]:
    """Price a call: every leg (original, forwarding, transfers) priced and rounded on its own."""
    data = body.model_dump(by_alias=True, exclude={"card"}, exclude_none=True)
    return price_call(_card(request, body.card), Call.from_dict(data)).to_dict()
