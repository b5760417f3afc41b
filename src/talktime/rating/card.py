"""The rate card in memory: immutable rates with their references, and the lookups pricing uses.

A `RateCard` is built by `talktime.rating.loader` from a validated file set; every rate carries a
`RateRef` (card, version, file, line) so a priced line can say which row produced it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from talktime import money
from talktime.numbers import NumberInfo, Overrides, classify
from talktime.rating.errors import DestinationNotPricedError

Direction = Literal["outbound", "inbound"]
Rounding = Literal["none", "up_to_cent"]
DIRECTIONS: Final = ("outbound", "inbound")
ROUNDINGS: Final = ("none", "up_to_cent")
ANY_COUNTRY: Final = "*"
MAX_LEG_SECONDS: Final = 7 * 24 * 3600
"""Bound on one leg's duration (a week)."""


def apply_rounding(amount: int, rounding: Rounding) -> int:
    """`amount` rounded by a card's rule: `none` keeps it, `up_to_cent` rounds up to the cent."""
    return money.round_up(amount, money.CENT) if rounding == "up_to_cent" else amount


@dataclass(frozen=True, slots=True)
class RateRef:
    """Where a rate comes from: card, version, file and line (`default@2026.11.1:voice.csv:9`)."""

    card: str
    version: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.card}@{self.version}:{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class SmsRate:
    """Price of one SMS segment: the direction's base fee plus the country rate."""

    per_segment: int
    base_fee: int
    country_rate: int
    ref: RateRef


@dataclass(frozen=True, slots=True)
class VoiceRate:
    """A voice rate and the card's billing rules, enough to price or hold a leg of any length.

    A leg of `d` seconds bills `billed_seconds(d)`: nothing when `d == 0`, else the first
    increment plus every started next increment. Its cost is `per_minute * billed / 60` (rounded
    up to the micro-unit) plus `connect_fee`, then rounded per `rounding`.
    """

    per_minute: int
    first_increment_s: int
    next_increment_s: int
    connect_fee: int
    rounding: Rounding
    ref: RateRef

    def billed_seconds(self, duration_s: int) -> int:
        """Seconds billed for a leg of `duration_s` seconds (whole increments)."""
        if duration_s <= 0:
            return 0
        rest = max(0, duration_s - self.first_increment_s)
        return self.first_increment_s + -(-rest // self.next_increment_s) * self.next_increment_s

    def unrounded_cost(self, duration_s: int) -> int:
        """Cost before the card's rounding: billed time at the rate plus the connect fee."""
        billed = self.billed_seconds(duration_s)
        if billed == 0:
            return 0
        return -(-self.per_minute * billed // 60) + self.connect_fee

    def cost(self, duration_s: int) -> int:
        """Cost of a leg of `duration_s` seconds in micro-units, rounded per the card."""
        return apply_rounding(self.unrounded_cost(duration_s), self.rounding)

    def max_seconds(self, budget: int, limit: int = MAX_LEG_SECONDS) -> int:
        """The longest leg, in whole billed increments and at most `limit` seconds, whose
        `cost` fits in `budget` micro-units (0 when not even the first increment fits).

        What a call authorization can allow for a hold or a credit balance.
        """
        if budget < 0 or self.cost(1) > budget:
            return 0
        low, high = 0, max(0, -(-(limit - self.first_increment_s) // self.next_increment_s))
        while low < high:  # the most next-increments that still fit; cost grows with them
            mid = (low + high + 1) // 2
            if self.cost(self.first_increment_s + mid * self.next_increment_s) <= budget:
                low = mid
            else:
                high = mid - 1
        return min(limit, self.first_increment_s + low * self.next_increment_s)


@dataclass(frozen=True, slots=True)
class NumberRate:
    """Monthly rental of a phone number of one country and type."""

    monthly: int
    ref: RateRef


@dataclass(frozen=True)
class RateCard:
    """One immutable version of a rate card.

    `plans` maps a plan name to its monthly free usage credit in micro-units; `digest` is the
    SHA-256 of the card's files, so a version's content can be checked later. Lookups raise
    `DestinationNotPricedError` when no row applies: rating never guesses a price.
    """

    name: str
    version: str
    effective_from: dt.date
    currency: str
    description: str
    plans: Mapping[str, int]
    overrides: Overrides
    sms_rounding: Rounding
    sms_base_fee: Mapping[str, int]
    sms_rates: Mapping[tuple[str, str], SmsRate]
    voice_first_increment_s: int
    voice_next_increment_s: int
    voice_connect_fee: int
    voice_rounding: Rounding
    voice_rates: Mapping[tuple[str, str, str, str], VoiceRate]
    voice_prefixes: Mapping[tuple[str, str], Mapping[str, VoiceRate]]
    number_rates: Mapping[tuple[str, str], NumberRate]
    digest: str
    source: str = ""
    _prefix_lengths: Mapping[tuple[str, str], tuple[int, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        lengths = {
            key: tuple(sorted({len(p) for p in rows}, reverse=True))
            for key, rows in self.voice_prefixes.items()
        }
        object.__setattr__(self, "_prefix_lengths", lengths)

    @property
    def ref(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"

    def classify(self, e164: str) -> NumberInfo:
        """The number as this card prices it: `numbers.classify`, then the card's overrides."""
        info = classify(e164)
        return self.overrides.apply(info) if self.overrides else info

    def prices_sms(self, direction: Direction) -> bool:
        """Whether the card has any SMS rate row for ``direction`` (a card without inbound rows
        does not charge received messages)."""
        return any(key[0] == direction for key in self.sms_rates)

    def sms_rate(self, direction: Direction, country: str) -> SmsRate:
        """Price per segment of an SMS in `direction` with a party in `country`."""
        rate = self.sms_rates.get((direction, country)) or self.sms_rates.get(
            (direction, ANY_COUNTRY)
        )
        if rate is None:
            raise DestinationNotPricedError(
                f"rate card {self.ref} has no {direction} SMS rate for {country}; "
                "ask the operator to add one",
                direction=direction,
                country=country,
            )
        return rate

    def voice_rate(
        self, direction: Direction, origin_country: str | None, destination: str | NumberInfo
    ) -> VoiceRate:
        """The rate of a voice leg.

        Outbound: `origin_country` is the caller ID's country and `destination` the called
        number. Inbound: `origin_country` is ignored and `destination` is the receiving number.
        A prefix row (longest first) wins over the country/type row.
        """
        info = self.classify(destination) if isinstance(destination, str) else destination
        origin = (origin_country or "") if direction == "outbound" else ""
        key = (direction, origin)
        prefixes = self.voice_prefixes.get(key)
        if prefixes:
            for length in self._prefix_lengths[key]:
                rate = prefixes.get(info.e164[:length])
                if rate is not None:
                    return rate
        rate = self.voice_rates.get((direction, origin, info.country, info.type))
        if rate is None:
            where = f"from {origin} " if origin else ""
            raise DestinationNotPricedError(
                f"rate card {self.ref} has no {direction} voice rate {where}for "
                f"{info.country} {info.type} numbers ({info.e164}); ask the operator to add one",
                direction=direction,
                origin=origin or None,
                country=info.country,
                number_type=info.type,
            )
        return rate

    def number_rate(self, number: str | NumberInfo) -> NumberRate:
        """Monthly rental of `number`, by its country and type."""
        info = self.classify(number) if isinstance(number, str) else number
        rate = self.number_rates.get((info.country, info.type))
        if rate is None:
            raise DestinationNotPricedError(
                f"rate card {self.ref} has no monthly price for {info.country} {info.type} "
                f"numbers ({info.e164})",
                country=info.country,
                number_type=info.type,
            )
        return rate

    def summary(self) -> dict[str, object]:
        """Plain data describing the card (header, plans, row counts), money as strings."""
        return {
            "name": self.name,
            "version": self.version,
            "effective_from": self.effective_from.isoformat(),
            "currency": self.currency,
            "description": self.description,
            "digest": self.digest,
            "source": self.source,
            "plans": {name: money.format(credit, 2) for name, credit in self.plans.items()},
            "sms": {
                "rounding": self.sms_rounding,
                "base_fee": {d: money.format(v) for d, v in self.sms_base_fee.items()},
                "rates": len(self.sms_rates),
            },
            "voice": {
                "first_increment": self.voice_first_increment_s,
                "next_increment": self.voice_next_increment_s,
                "connect_fee": money.format(self.voice_connect_fee),
                "rounding": self.voice_rounding,
                "rates": len(self.voice_rates),
                "prefix_rates": sum(len(v) for v in self.voice_prefixes.values()),
            },
            "numbers": {"rates": len(self.number_rates)},
            "overrides": {
                "regions": dict(self.overrides.regions),
                "prefix_types": dict(self.overrides.prefix_types),
            },
        }
