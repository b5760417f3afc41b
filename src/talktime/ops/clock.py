"""Time as integer epoch microseconds, the unit of every operations table."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    """The current time in epoch microseconds."""
    return time.time_ns() // 1000


def to_datetime(us: int) -> datetime:
    """Epoch microseconds as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


def from_datetime(at: datetime) -> int:
    """An aware datetime as epoch microseconds."""
    if at.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date or date-time as Python reads it (`datetime.fromisoformat`: `2026-10-01`,
    `20261001`, `2026-10-01T12:00+02:00`...), UTC when it has no offset; ValueError otherwise.
    The CLI and the API read report times with it, so one text means one moment in both."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(us: int | None) -> str | None:
    """Epoch microseconds as ISO 8601 UTC text, or None."""
    return None if us is None else to_datetime(us).isoformat().replace("+00:00", "Z")
