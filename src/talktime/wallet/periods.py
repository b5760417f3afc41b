"""Time for the wallet: epoch-microsecond conversion and billing periods from an anchor.

Pure functions, no I/O. A period starts at the anchor plus a whole number of months (the day is
clamped to the month's length: an anchor on the 31st gives Feb 28/29) and ends where the next one
starts. The default anchor is the first instant of a calendar month, UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_micros(moment: datetime) -> int:
    """Epoch microseconds of a timezone-aware datetime (naive datetimes are refused)."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC), not naive datetimes")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The UTC datetime of epoch microseconds."""
    seconds, micro = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro)


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the calendar month holding ``moment``: the default anchor."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by whole months, the day clamped to the target month's length."""
    utc = anchor.astimezone(UTC)
    index = utc.year * 12 + (utc.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(utc.day, calendar.monthrange(year, month)[1])
    return utc.replace(year=year, month=month, day=day)


def period_bounds(anchor: datetime, at: datetime) -> tuple[datetime, datetime]:
    """The billing period ``[start, end)`` that holds ``at``, for periods anchored at ``anchor``."""
    utc = at.astimezone(UTC)
    anchor = anchor.astimezone(UTC)
    months = (utc.year - anchor.year) * 12 + (utc.month - anchor.month)
    start = add_months(anchor, months)
    if start > utc:
        months -= 1
        start = add_months(anchor, months)
    return start, add_months(anchor, months + 1)


def period_bounds_micros(anchor_at: int, at: int) -> tuple[int, int]:
    """`period_bounds` over epoch microseconds."""
    start, end = period_bounds(from_micros(anchor_at), from_micros(at))
    return to_micros(start), to_micros(end)


def next_period(anchor: datetime, period_start: datetime) -> tuple[datetime, datetime]:
    """The period that follows the one starting at ``period_start``."""
    _, end = period_bounds(anchor, period_start)
    return period_bounds(anchor, end)
