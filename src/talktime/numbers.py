"""Phone numbers: E.164 parsing, country and number type, built on `phonenumbers`.

`classify` is the only entry point pricing needs; it is pure and cached (bounded LRU), because
parsing is the slowest step of a quote. `Overrides` is a rate card's table that re-maps a
region or a number prefix for pricing only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal, get_args

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from talktime.errors import TalktimeError

NumberType = Literal["mobile", "local", "toll_free", "other"]
NUMBER_TYPES: Final[tuple[str, ...]] = get_args(NumberType)

CACHE_SIZE: Final = 65_536
"""How many distinct numbers `classify` remembers (least recently used go first)."""

E164: Final = re.compile(r"\+[1-9][0-9]{1,14}\Z")
"""What talktime accepts as a phone number: `+`, a country code, at most 15 digits in all."""

_TYPES: Final[Mapping[int, NumberType]] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "local",
    # US/CA (and the other +1 regions) do not tell mobile from fixed line: they price as local.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "local",
    PhoneNumberType.TOLL_FREE: "toll_free",
}


class InvalidNumberError(TalktimeError):
    """A phone number that is not a valid E.164 number; the sentence says why."""

    code = "invalid_number"
    status = 422
    title = "Invalid phone number"


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """A classified number: `e164` as given, ISO `country` (region) and pricing `type`.

    `type` is `mobile`, `local` (fixed line; also every +1 number, which the library reports as
    fixed-line-or-mobile), `toll_free`, or `other` (VoIP, premium rate, shared cost, personal,
    pager, UAN, voicemail).
    """

    e164: str
    country: str
    type: NumberType


def _parse_reason(exc: NumberParseException) -> str:
    """Why phonenumbers could not read a number, in words: its message without the "(0) "
    error-type prefix, and an unknown country code said as such (its own words, "Could not
    interpret numbers after plus-sign", did not say what to fix)."""
    if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        return (
            "it does not begin with a country code in use (such as 1 for the US and CA, or 44 "
            "for GB); check the digits after the '+'"
        )
    return re.sub(r"^\(\d+\) ", "", str(exc))


def classify(e164: str) -> NumberInfo:
    """Classify an E.164 number (`+14155550123`); raise `InvalidNumberError` with the reason.

    Each +1 region is its own country (+1 787 is PR, +1 242 is BS), and so are GG, JE and IM
    inside +44. Results are cached in a bounded LRU of `CACHE_SIZE` numbers.
    """
    return _classify(require_e164(e164))


def require_e164(e164: object) -> str:
    """``e164`` when it is written as E.164 ('+', country code, digits only, at most 15), else
    `InvalidNumberError` with the sentence `classify` gives; the writing only, not validity."""
    if type(e164) is not str:
        raise InvalidNumberError(f"a phone number is a string such as +14155550123, not {e164!r}")
    if E164.match(e164) is None:
        raise InvalidNumberError(
            f"{e164!r} is not an E.164 number: write '+', the country code and the number, "
            "digits only, at most 15 (such as +14155550123)",
            number=e164,
        )
    return e164


@lru_cache(maxsize=CACHE_SIZE)
def _classify(e164: str) -> NumberInfo:
    try:
        parsed = phonenumbers.parse(e164, None)
    except NumberParseException as exc:  # an unknown country code
        raise InvalidNumberError(
            f"{e164} cannot be parsed: {_parse_reason(exc)}", number=e164
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        reason = _invalid_reason(parsed)
        raise InvalidNumberError(f"{e164} is not a valid phone number: {reason}", number=e164)
    canonical = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if canonical != e164:  # +4407400123456 is +447400123456: one line, one spelling
        raise InvalidNumberError(
            f"{e164} is not in E.164 form: write it as {canonical}, without the national "
            "trunk prefix (such as 0) after the country code",
            number=e164,
        )
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or region == "001":
        raise InvalidNumberError(
            f"{e164} is a non-geographic number (no country); it cannot be priced", number=e164
        )
    kind = _TYPES.get(phonenumbers.number_type(parsed), "other")
    return NumberInfo(e164, region, kind)


def _invalid_reason(parsed: phonenumbers.PhoneNumber) -> str:
    result = phonenumbers.is_possible_number_with_reason(parsed)
    reasons = {
        phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.ValidationResult.TOO_SHORT: "too short for its country",
        phonenumbers.ValidationResult.TOO_LONG: "too long for its country",
        phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
    }
    return reasons.get(result, "no such number range is assigned in its country")


def cache_info() -> str:
    """Hits, misses and size of the classification cache, for benchmarks and diagnostics."""
    return str(_classify.cache_info())


def cache_clear() -> None:
    """Forget every cached classification (benchmarks measure a cold cache with it)."""
    _classify.cache_clear()


@dataclass(frozen=True, slots=True)
class Overrides:
    """A rate card's pricing overrides, applied after `classify`.

    `regions` maps a country to the one it is priced as (`{"GG": "GB"}`); `prefix_types` maps an
    E.164 prefix (`"+447624"`) to a number type, the longest matching prefix winning. The
    original classification is unchanged; only the pricing view is.
    """

    regions: Mapping[str, str] = field(default_factory=dict)
    prefix_types: Mapping[str, NumberType] = field(default_factory=dict)
    _lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lengths = sorted({len(p) for p in self.prefix_types}, reverse=True)
        object.__setattr__(self, "_lengths", tuple(lengths))

    def __bool__(self) -> bool:
        return bool(self.regions or self.prefix_types)

    def apply(self, info: NumberInfo) -> NumberInfo:
        """The number as it is priced: region re-mapped, type from the longest prefix."""
        country = self.regions.get(info.country, info.country)
        kind = info.type
        for length in self._lengths:
            found = self.prefix_types.get(info.e164[:length])
            if found is not None:
                kind = found
                break
        if country == info.country and kind == info.type:
            return info
        return NumberInfo(info.e164, country, kind)
