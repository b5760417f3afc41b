"""The Segment Calculator's cost estimate: an outbound SMS to a country, priced by the rating
engine with the active rate card between example numbers of that country (from `phonenumbers`).

No database and no account: the card is the configured `rate_card` in force today.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers.geocoder import country_name_for_number

from talktime import money, sms
from talktime.errors import TalktimeError
from talktime.policy import SMS_COUNTRIES, SMS_ZONES
from talktime.rating import RateCard, price_sms
from talktime.rating.card import ANY_COUNTRY
from talktime.sms.gsm import Language


class CountryNotPricedError(TalktimeError):
    """A country the active rate card has no outbound SMS rate for."""

    code = "country_not_priced"
    status = 422
    title = "Country not priced"


@dataclass(frozen=True, slots=True)
class Country:
    """A destination the calculator offers: ISO code and English name."""

    code: str
    name: str


def _name(code: str) -> str:
    example = phonenumbers.example_number(code)
    return (country_name_for_number(example, "en") if example else "") or code


def countries(card: RateCard) -> list[Country]:
    """Countries the card prices outbound SMS to (its explicit rows, not the `*` fallback),
    sorted by name."""
    codes = {
        country
        for direction, country in card.sms_rates
        if direction == "outbound" and country != ANY_COUNTRY
    }
    return sorted((Country(c, _name(c)) for c in codes), key=lambda c: c.name)


@lru_cache(maxsize=512)
def example_number(country: str) -> str:
    """An example mobile number of ``country`` in E.164 (any example number if it has no
    mobile one)."""
    number = phonenumbers.example_number_for_type(
        country, PhoneNumberType.MOBILE
    ) or phonenumbers.example_number(country)
    if number is None:
        raise CountryNotPricedError(
            f"{country} is not a country code the calculator knows; pick one from the list.",
            country=country,
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _sending_note(country: str) -> str:
    if country in SMS_COUNTRIES:
        zone = [c for c, z in SMS_ZONES.items() if z == SMS_ZONES.get(country) and c != country]
        also = f" or {zone[0]}" if zone else ""
        return f"Send it from an SMS-enabled {country}{also} number."
    return (
        f"To send it you need an SMS-enabled number in {country}, and SMS-enabled numbers "
        f"exist only in {', '.join(sorted(SMS_COUNTRIES))}."
    )


def estimate(
    card: RateCard,
    text: str,
    country: str,
    *,
    smart_encoding: bool = False,
    language: Language | None = None,
) -> dict[str, Any]:
    """What an outbound SMS of ``text`` to ``country`` costs with ``card``, as plain data
    (money as decimal strings), with a note saying how it was priced."""
    offered = {c.code for c in countries(card)}
    if country not in offered:
        raise CountryNotPricedError(
            f"rate card {card.ref} has no outbound SMS rate for {country}; "
            f"choose one of {', '.join(sorted(offered))}.",
            country=country,
        )
    number = example_number(country)
    quote = price_sms(card, number, number, text, "outbound", smart_encoding=smart_encoding)
    line = quote.lines[0]
    note = (
        f"Priced with rate card {card.ref} as an outbound SMS from and to {number}, an example "
        f"{country} number: {line.quantity} segment"
        f"{'' if line.quantity == 1 else 's'} × {money.format(line.unit_price)} {quote.currency}"
        f"{', rounded up to the cent' if line.rounding == 'up_to_cent' else ''}. "
    )
    if language is not None:
        with_tables = sms.segment(text, smart_encoding=smart_encoding, language=language)
        if with_tables.segments != int(line.quantity):
            note += (
                f"Messages sent through the API do not use national language tables, so this "
                f"is priced at {line.quantity} segments, not the {with_tables.segments} shown. "
            )
    note += _sending_note(country)
    return {
        "card": card.name,
        "version": card.version,
        "currency": quote.currency,
        "country": country,
        "from": number,
        "to": number,
        "segments": int(line.quantity),
        "per_segment": money.format(line.unit_price),
        "total": money.format(quote.total),
        "rounding": line.rounding,
        "rate": str(line.rate),
        "note": note,
    }
