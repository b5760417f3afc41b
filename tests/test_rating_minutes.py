"""A call line's quantity is its billed minutes: exact when a decimal can say it, else to six
places (it showed the 28 digits of a Decimal division for increments that do not divide 60)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from talktime.rating.pricing import billed_minutes


def test_billed_minutes_are_exact_when_a_decimal_can_say_them_and_six_places_otherwise() -> None:
    assert [str(billed_minutes(s)) for s in (0, 6, 30, 60, 90, 3600)] == [
        "0",
        "0.1",
        "0.5",
        "1",
        "1.5",
        "60",
    ]
    assert [str(billed_minutes(s)) for s in (1, 7, 61)] == ["0.016667", "0.116667", "1.016667"]


@given(st.integers(min_value=0, max_value=7 * 24 * 3600))
def test_billed_minutes_never_show_more_than_six_places_and_stay_within_half_a_millionth(
    seconds: int,
) -> None:
    minutes = billed_minutes(seconds)
    assert -minutes.as_tuple().exponent <= 6  # type: ignore[operator]
    assert abs(minutes - Decimal(seconds) / 60) <= Decimal("0.0000005")
