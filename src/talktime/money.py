"""Money: integer micro-units inside, decimal strings at the edges, never float.

1 USD = 1_000_000 micro-units. This module parses and formats decimal strings and owns every
rounding helper; each helper names its rounding mode and the step it rounds to.
"""

from __future__ import annotations

import re
from typing import Final

MICROS_PER_UNIT: Final = 1_000_000
"""Micro-units in one currency unit (one dollar)."""

MICRO: Final = 1
TENTH_CENT: Final = 1_000
CENT: Final = 10_000
DOLLAR: Final = MICROS_PER_UNIT

MAX_DECIMALS: Final = 6
MAX_AMOUNT: Final = 9_223_372_036_854_775_807  # BIGINT: what the database can hold

_MAX_WHOLE_DIGITS: Final = len(str(MAX_AMOUNT // MICROS_PER_UNIT))
"""Digits of the largest whole part an amount can have: a longer one is too large, refused before
``int()`` (which raises a plain ValueError past 4,300 digits)."""
_SHOWN: Final = 40
"""A refused text is quoted up to this many characters."""

_DECIMAL = re.compile(r"(?P<sign>-?)(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?\Z")
"""A '-' is read to refuse a negative amount by name (or take it, ``allow_negative``); a '+' is
not part of an amount, as the API's unsigned pattern (`api.models.AMOUNT_PATTERN`) says."""


class MoneyError(ValueError):
    """A value that is not a valid amount of money; the message says why."""


def parse(text: str, *, allow_negative: bool = False) -> int:
    """Parse a decimal string such as ``"0.0085"`` into micro-units (8500).

    Accepts digits with at most six decimals, and a leading '-' (``"-0"`` is zero). Refuses
    floats and other non-strings, a leading '+', NaN, infinities, exponents, thousands
    separators, surrounding blanks and, unless ``allow_negative``, negative amounts.
    """
    if isinstance(text, bool) or not isinstance(text, str):
        kind = "null" if text is None else type(text).__name__
        raise MoneyError(f'an amount must be a decimal string such as "1.50", not {kind}')
    shown = _quote(text)
    match = _DECIMAL.match(text)
    if match is None:
        raise MoneyError(
            f"{shown} is not a decimal amount: write digits with an optional '.' and up to "
            f'{MAX_DECIMALS} decimals, such as "0.0085" (no leading +, no exponent, no spaces)'
        )
    frac = match["frac"] or ""
    if len(frac) > MAX_DECIMALS:
        raise MoneyError(
            f"{shown} has {len(frac)} decimals; amounts carry at most {MAX_DECIMALS} "
            "(one micro-unit)"
        )
    whole = match["int"].lstrip("0") or "0"
    if len(whole) > _MAX_WHOLE_DIGITS:
        raise MoneyError(f"{shown} is too large to be an amount of money")
    value = int(whole) * MICROS_PER_UNIT + int(frac.ljust(MAX_DECIMALS, "0"))
    if match["sign"] == "-":
        value = -value
    if value < 0 and not allow_negative:
        raise MoneyError(f"{shown} is negative; this amount must be zero or more")
    if abs(value) > MAX_AMOUNT:
        raise MoneyError(f"{shown} is too large to be an amount of money")
    return value


def _quote(text: str) -> str:
    """``repr(text)``, cut to its first `_SHOWN` characters (marked with ...) when longer."""
    return repr(text) if len(text) <= _SHOWN else f"{text[:_SHOWN]!r}..."


def format(amount: int, decimals: int = 4) -> str:
    """Format micro-units as a decimal string with at least ``decimals`` decimals.

    Never loses a micro-unit: when the amount needs more decimals than asked for, it gets them
    (``format(8550, 4) == "0.00855"``), so ``parse(format(x)) == x`` always holds.
    """
    _check_amount(amount)
    if not 0 <= decimals <= MAX_DECIMALS:
        raise MoneyError(f"decimals must be between 0 and {MAX_DECIMALS}, not {decimals}")
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), MICROS_PER_UNIT)
    digits = f"{frac:06d}".rstrip("0")
    digits = digits.ljust(decimals, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def round_up(amount: int, step: int) -> int:
    """Round towards +infinity to a multiple of ``step`` (``round_up(8300, CENT) == 10000``)."""
    _check_amount(amount)
    _check_step(step)
    return -((-amount) // step) * step


def round_down(amount: int, step: int) -> int:
    """Round towards -infinity to a multiple of ``step``."""
    _check_amount(amount)
    _check_step(step)
    return (amount // step) * step


def round_half_up(amount: int, step: int) -> int:
    """Round to the nearest multiple of ``step``; an exact half goes towards +infinity."""
    _check_amount(amount)
    _check_step(step)
    return ((2 * amount + step) // (2 * step)) * step


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise MoneyError(f"an amount is an int of micro-units, not {type(amount).__name__}")


def _check_step(step: int) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
        raise MoneyError(f"a rounding step is a positive int of micro-units, not {step!r}")
