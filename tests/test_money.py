"""Money: parsing, formatting and rounding of integer micro-units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talktime import money
from talktime.money import CENT, MoneyError

amounts = st.integers(min_value=-(10**15), max_value=10**15)
steps = st.sampled_from([1, 10, 1_000, CENT, 100_000, money.DOLLAR, 7, 333])


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0.0085", 8_500),
        ("0.013", 13_000),
        ("1", 1_000_000),
        ("1.50", 1_500_000),
        ("0.000001", 1),
        ("10.00", 10_000_000),
        ("0", 0),
    ],
)
def test_parse_reads_decimal_strings_as_micro_units(text: str, micros: int) -> None:
    assert money.parse(text) == micros


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0.01, "decimal string"),
        (1, "decimal string"),
        (True, "decimal string"),
        ("NaN", "not a decimal"),
        ("inf", "not a decimal"),
        ("1e3", "not a decimal"),
        ("1E-2", "not a decimal"),
        ("0.0000001", "7 decimals"),
        (" 1.00", "not a decimal"),
        ("1,000.00", "not a decimal"),
        ("", "not a decimal"),
        (".5", "not a decimal"),
        ("5.", "not a decimal"),
        ("+2.5", "not a decimal"),
        ("+0", "not a decimal"),
        ("-1.00", "negative"),
        ("99999999999999999999", "too large"),
    ],
)
def test_parse_refuses_what_is_not_an_exact_amount_with_a_reason(
    value: object, reason: str
) -> None:
    with pytest.raises(MoneyError, match=reason):
        money.parse(value)  # type: ignore[arg-type]


def test_parse_accepts_negative_only_when_the_caller_allows_it() -> None:
    assert money.parse("-0.25", allow_negative=True) == -250_000


def test_parse_refuses_a_leading_plus_with_the_malformed_amount_sentence() -> None:
    with pytest.raises(MoneyError) as refused:
        money.parse("+5", allow_negative=True)
    assert str(refused.value) == (
        "'+5' is not a decimal amount: write digits with an optional '.' and up to 6 decimals, "
        'such as "0.0085" (no leading +, no exponent, no spaces)'
    )


@pytest.mark.parametrize(
    ("micros", "decimals", "text"),
    [
        (8_500, 4, "0.0085"),
        (30_000, 4, "0.0300"),
        (10_000_000, 2, "10.00"),
        (8_550, 4, "0.00855"),
        (-1_500_000, 2, "-1.50"),
        (1_000_000, 0, "1"),
        (1, 2, "0.000001"),
    ],
)
def test_format_shows_at_least_the_chosen_decimals_and_never_drops_a_micro_unit(
    micros: int, decimals: int, text: str
) -> None:
    assert money.format(micros, decimals) == text


def test_format_refuses_floats() -> None:
    with pytest.raises(MoneyError):
        money.format(0.5)  # type: ignore[arg-type]


@given(amounts, st.integers(min_value=0, max_value=6))
def test_parse_of_format_is_identity(amount: int, decimals: int) -> None:
    assert money.parse(money.format(amount, decimals), allow_negative=True) == amount


@given(amounts, steps)
def test_round_up_never_goes_down_and_lands_on_the_step(amount: int, step: int) -> None:
    up = money.round_up(amount, step)
    assert up >= amount
    assert up - amount < step
    assert up % step == 0


@given(amounts, steps)
def test_round_down_never_goes_up_and_lands_on_the_step(amount: int, step: int) -> None:
    down = money.round_down(amount, step)
    assert down <= amount
    assert amount - down < step
    assert down % step == 0


@given(amounts, steps)
def test_round_half_up_picks_the_nearest_step(amount: int, step: int) -> None:
    near = money.round_half_up(amount, step)
    assert near % step == 0
    assert 2 * abs(near - amount) <= step
    if 2 * (near - amount) == -step:  # exactly halfway must go up
        pytest.fail("a half must round towards +infinity")


def test_round_up_to_the_cent_matches_the_seed_example() -> None:
    # $0.0083 per segment rounds up to $0.01 per message.
    assert money.round_up(8_300, CENT) == 10_000
    assert money.round_up(20_000, CENT) == 20_000
    assert money.round_half_up(5_000, CENT) == 10_000


def test_rounding_refuses_a_bad_step() -> None:
    with pytest.raises(MoneyError):
        money.round_up(100, 0)
