"""Billing periods from an anchor: pure date arithmetic, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talktime.wallet.periods import (
    add_months,
    from_micros,
    month_start,
    next_period,
    period_bounds,
    to_micros,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_default_anchor_gives_calendar_months() -> None:
    anchor = month_start(utc(2026, 3, 10, 12))
    assert anchor == utc(2026, 3, 1)
    assert period_bounds(anchor, utc(2026, 12, 31, 23, 59)) == (utc(2026, 12, 1), utc(2027, 1, 1))


def test_anchor_on_the_31st_is_clamped_to_short_months_and_comes_back() -> None:
    anchor = utc(2026, 1, 31, 9)
    assert add_months(anchor, 1) == utc(2026, 2, 28, 9)
    assert add_months(anchor, 2) == utc(2026, 3, 31, 9)
    assert period_bounds(anchor, utc(2026, 3, 1)) == (utc(2026, 2, 28, 9), utc(2026, 3, 31, 9))
    assert next_period(anchor, utc(2026, 2, 28, 9)) == (utc(2026, 3, 31, 9), utc(2026, 4, 30, 9))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_micros(datetime(2026, 1, 1))


@given(
    anchor=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    offset=st.integers(0, 20 * 366 * 86_400),
)
def test_every_moment_falls_in_exactly_one_period_starting_a_whole_month_after_the_anchor(
    anchor: datetime, offset: int
) -> None:
    at = anchor + timedelta(seconds=offset)
    start, end = period_bounds(anchor, at)
    assert start <= at < end
    assert period_bounds(anchor, end) == (end, period_bounds(anchor, end)[1])
    assert from_micros(to_micros(at)) == at
    months = (start.year - anchor.year) * 12 + start.month - anchor.month
    assert start == add_months(anchor, months)
