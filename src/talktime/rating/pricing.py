"""Pricing of calls (expanded into legs, each priced and rounded on its own) and number
rentals against one rate card version. Pure functions; the output is a `Quote`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from talktime.errors import naming
from talktime.rating.calls import Call, legs
from talktime.rating.card import RateCard, apply_rounding
from talktime.rating.errors import InvalidUsageError
from talktime.rating.quote import Quote, QuoteLine

_SIXTY: Final = Decimal(60)
_MINUTE_PLACES: Final = Decimal("0.000001")
MAX_MONTHS: Final = 120


def billed_minutes(seconds: int) -> Decimal:
    """Billed seconds as minutes: exact when a decimal can say it (90 s: 1.5), else to six
    places (7 s: 0.116667; the 28 digits of a division said nothing more). The line's
    `unrounded` is computed from the seconds, never from this figure."""
    minutes = Decimal(seconds) / _SIXTY
    exact = minutes.quantize(_MINUTE_PLACES)
    return minutes if exact == minutes else exact


def price_call(card: RateCard, call: Call) -> Quote:
    """Price a call: every billable leg (`calls.legs`) priced and rounded on its own.

    Outbound legs use the rate from the caller ID's country to the called number; inbound legs
    the rate of the receiving number's country and type. A 0-second leg is a line of 0. A
    refusal names the field of the number at fault (`Leg.origin_field`, `Leg.number_field`).
    """
    lines: list[QuoteLine] = []
    for leg in legs(call):
        if leg.direction == "outbound":
            assert leg.origin is not None
            assert leg.origin_field is not None
            with naming(leg.origin_field):
                origin = card.classify(leg.origin).country
            with naming(leg.number_field):
                rate = card.voice_rate("outbound", origin, leg.number)
            what = f"outbound leg ({leg.role}) from {leg.origin} to {leg.number}"
        else:
            with naming(leg.number_field):
                rate = card.voice_rate("inbound", None, leg.number)
            what = f"inbound leg ({leg.role}) on {leg.number}"
        billed = rate.billed_seconds(leg.duration)
        unrounded = rate.unrounded_cost(leg.duration)
        lines.append(
            QuoteLine(
                "call_leg",
                f"{what}, {leg.duration} s",
                billed_minutes(billed),
                "minutes",
                rate.per_minute,
                unrounded,
                apply_rounding(unrounded, rate.rounding),
                rate.rounding,
                rate.ref,
                seconds=leg.duration,
            )
        )
    return Quote.of(card.name, card.version, card.currency, tuple(lines))


def price_number_rental(card: RateCard, number: str, months: int = 1) -> Quote:
    """Price renting `number` for `months` months at the card's monthly price for its country
    and type."""
    if type(months) is not int or not 1 <= months <= MAX_MONTHS:
        raise InvalidUsageError(f"months must be a whole number from 1 to {MAX_MONTHS}")
    info = card.classify(number)
    rate = card.number_rate(info)
    amount = rate.monthly * months
    line = QuoteLine(
        "number_rental",
        f"rental of {info.e164} ({info.country} {info.type})",
        Decimal(months),
        "months",
        rate.monthly,
        amount,
        amount,
        "none",
        rate.ref,
    )
    return Quote(card.name, card.version, card.currency, (line,), amount)
