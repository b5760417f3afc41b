"""Quotes: the priced lines of one message, call or rental, each naming the rate that produced it.

Amounts are integer micro-units; `to_dict` renders money as decimal strings for the edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from talktime import money
from talktime.rating.card import RateRef

LineKind = Literal["sms", "call_leg", "number_rental"]
Unit = Literal["segments", "minutes", "months"]


# Quotes and their lines are built once and never changed, but not `frozen`: a frozen
# dataclass sets each field through `object.__setattr__`, which made building the two a third
# of a warm SMS quote (bench/rating.py: 3.7 us a quote, 0.38 of a bare parse, against a
# target of a third; 2.5 us without it).
@dataclass(slots=True)
class QuoteLine:
    """One priced item.

    `quantity` of `unit` at `unit_price` gives `unrounded` (micro-units, after any connect fee);
    `amount` is what is charged, after the card's rounding rule (`rounding`). `rate` names the
    card version, file and line of the rate used. For a call leg, `seconds` is its duration.
    """

    kind: LineKind
    description: str
    quantity: Decimal
    unit: Unit
    unit_price: int
    unrounded: int
    amount: int
    rounding: str
    rate: RateRef
    seconds: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data with money as decimal strings."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "description": self.description,
            "quantity": str(self.quantity),
            "unit": self.unit,
            "unit_price": money.format(self.unit_price),
            "unrounded": money.format(self.unrounded),
            "amount": money.format(self.amount),
            "rounding": self.rounding,
            "rate": str(self.rate),
        }
        if self.seconds is not None:
            out["seconds"] = self.seconds
        return out


@dataclass(slots=True)
class Quote:
    """What something costs: `total` micro-units of `currency`, the sum of `lines`' amounts,
    priced with card `card` at `version`."""

    card: str
    version: str
    currency: str
    lines: tuple[QuoteLine, ...]
    total: int

    @classmethod
    def of(cls, card: str, version: str, currency: str, lines: tuple[QuoteLine, ...]) -> Quote:
        """A quote whose total is the sum of its lines."""
        return cls(card, version, currency, lines, sum(line.amount for line in lines))

    def to_dict(self) -> dict[str, Any]:
        """Plain data with money as decimal strings (`"total": "0.0300"`)."""
        return {
            "card": self.card,
            "version": self.version,
            "currency": self.currency,
            "total": money.format(self.total),
            "lines": [line.to_dict() for line in self.lines],
        }
