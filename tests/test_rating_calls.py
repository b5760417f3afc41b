"""Call pricing: the seeds' call rules (per started minute, legs of forwarded and transferred
calls, caller-ID origin, round-up to the cent) and properties of a leg's cost."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import ceil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talktime import money
from talktime.numbers import InvalidNumberError
from talktime.rating import (
    Call,
    DestinationNotPricedError,
    Forward,
    InvalidCallError,
    RateRef,
    Transfer,
    VoiceRate,
    load_card,
    price_call,
    price_number_rental,
    read_card,
)

from ratecards import FIRST_SHIPPED, SHIPPED, copy_card

US_BIZ = "+14155550123"
US_OTHER = "+12015550123"
US_USER = "+16505550199"
AU_MOBILE = "+61412345678"
GB_MOBILE = "+447400123456"
CENT = money.CENT


def cents(amount: str) -> int:
    return money.parse(amount)


@pytest.mark.parametrize("name", ["default", "passthrough"])
def test_a_70_second_us_call_bills_two_minutes_at_the_rate_not_rounded_to_the_cent(
    name: str,
) -> None:
    # the second seed page: "a 70-second call is charged as a 2-minute call"; only SMS is
    # "rounded up to the nearest cent"
    quote = price_call(load_card(name), Call("outbound", US_BIZ, US_OTHER, 70))
    (line,) = quote.lines
    assert line.kind == "call_leg"
    assert (line.quantity, line.unit) == (Decimal(2), "minutes")
    assert line.unit_price == cents("0.013")
    assert line.unrounded == line.amount == quote.total == 2 * cents("0.013")  # $0.026
    assert line.rounding == "none"
    assert (line.rate.card, line.rate.version, line.rate.file) == (name, SHIPPED, "voice.csv")
    assert quote.to_dict()["total"] == "0.0260"


@pytest.mark.parametrize("name", ["default", "passthrough"])
def test_the_first_shipped_version_still_rounds_each_leg_up_to_the_cent(name: str) -> None:
    # a shipped version never changes: calls authorized on it complete at its prices
    quote = price_call(load_card(name, FIRST_SHIPPED), Call("outbound", US_BIZ, US_OTHER, 70))
    assert (quote.version, quote.lines[0].rounding, quote.total) == (
        FIRST_SHIPPED,
        "up_to_cent",
        cents("0.03"),
    )


def test_every_started_minute_is_billed() -> None:
    card = load_card("default")
    totals = {
        d: price_call(card, Call("outbound", US_BIZ, US_OTHER, d)).lines[0].unrounded
        for d in (1, 60, 61, 120, 121)
    }
    assert totals == {1: 13_000, 60: 13_000, 61: 26_000, 120: 26_000, 121: 39_000}


def test_an_unanswered_leg_costs_nothing() -> None:
    quote = price_call(load_card("default"), Call("outbound", US_BIZ, US_OTHER, 0))
    assert quote.total == 0
    assert quote.lines[0].quantity == 0


def test_a_us_caller_id_calling_an_australian_mobile_pays_the_us_to_au_rate() -> None:
    card = load_card("default")
    quote = price_call(card, Call("outbound", US_BIZ, AU_MOBILE, 60))
    assert quote.lines[0].unit_price == cents("0.053")  # international US -> AU mobile row
    domestic = price_call(card, Call("outbound", "+61212345678", AU_MOBILE, 60))
    assert domestic.lines[0].unit_price == cents("0.075")  # AU -> AU mobile: the seed's figure


def test_an_inbound_call_is_priced_by_the_receiving_number() -> None:
    card = load_card("default")
    quote = price_call(card, Call("inbound", AU_MOBILE, US_BIZ, 70))
    assert [(ln.unit_price, ln.amount) for ln in quote.lines] == [(cents("0.0085"), cents("0.017"))]
    on_au = price_call(card, Call("inbound", US_BIZ, "+61212345678", 30))
    assert on_au.lines[0].unit_price == cents("0.01")


def test_a_forwarded_call_is_charged_as_two_calls() -> None:
    call = Call("inbound", AU_MOBILE, US_BIZ, 70, forward=Forward(GB_MOBILE, 65))
    quote = price_call(load_card("default"), call)
    inbound, forwarded = quote.lines
    assert (inbound.unit_price, inbound.amount) == (cents("0.0085"), cents("0.017"))
    assert "forwarded" in forwarded.description
    assert (forwarded.unit_price, forwarded.amount) == (
        cents("0.035"),
        cents("0.07"),
    )  # US -> GB mobile
    assert quote.total == cents("0.087")


def test_transfers_to_users_repeat_two_legs_each_time() -> None:
    call = Call(
        "outbound",
        US_BIZ,
        US_OTHER,
        100,
        transfers=(Transfer("user", US_USER, 10, 50), Transfer("user", "+16135550123", 5, 125)),
    )
    quote = price_call(load_card("default"), call)
    assert [(ln.description.split(" (")[0], ln.seconds, ln.amount) for ln in quote.lines] == [
        ("outbound leg", 100, cents("0.026")),  # original: 2 min x 0.013
        ("outbound leg", 10, cents("0.013")),  # transferring user's call: 1 min
        ("inbound leg", 50, cents("0.0085")),  # receiving user answers: 1 min
        ("outbound leg", 5, cents("0.013")),
        ("inbound leg", 125, cents("0.0255")),  # 3 min x 0.0085
    ]
    assert quote.total == cents("0.086")


def test_an_external_transfer_adds_one_outbound_leg() -> None:
    call = Call("inbound", GB_MOBILE, US_BIZ, 30, transfers=(Transfer("external", AU_MOBILE, 90),))
    quote = price_call(load_card("default"), call)
    original, external = quote.lines
    assert original.unit_price == cents("0.0085")
    assert "external" in external.description
    assert (external.unit_price, external.quantity, external.amount) == (
        cents("0.053"),
        Decimal(2),
        cents("0.106"),  # 2 x 0.053
    )


def test_a_transfer_leg_uses_its_own_caller_id() -> None:
    call = Call(
        "outbound",
        US_BIZ,
        US_OTHER,
        10,
        transfers=(Transfer("external", AU_MOBILE, 60, caller_id="+61212345678"),),
    )
    quote = price_call(load_card("default"), call)
    assert quote.lines[1].unit_price == cents("0.075")


def test_a_call_to_an_unpriced_destination_is_refused() -> None:
    with pytest.raises(DestinationNotPricedError):
        price_call(load_card("default"), Call("outbound", US_BIZ, "+17875550123", 60))
    with pytest.raises(InvalidNumberError):
        price_call(load_card("default"), Call("outbound", US_BIZ, "+1 201 555 0123", 60))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"direction": "outbound", "from": US_BIZ, "to": US_OTHER, "duration": -1}, "duration"),
        ({"direction": "outbound", "from": US_BIZ, "to": US_OTHER, "duration": 1.5}, "duration"),
        ({"direction": "sideways", "from": US_BIZ, "to": US_OTHER, "duration": 1}, "direction"),
        ({"direction": "outbound", "to": US_OTHER, "duration": 1}, "'from' is required"),
        (
            {"direction": "outbound", "from": US_BIZ, "to": US_OTHER, "duration": 1, "x": 1},
            "unknown",
        ),
        (
            {
                "direction": "outbound",
                "from": US_BIZ,
                "to": US_OTHER,
                "duration": 1,
                "forward": {"to": GB_MOBILE, "duration": 3},
            },
            "only an inbound call",
        ),
        (
            {
                "direction": "inbound",
                "from": US_BIZ,
                "to": US_OTHER,
                "duration": 1,
                "transfers": [
                    {
                        "kind": "external",
                        "to": GB_MOBILE,
                        "outbound_duration": 3,
                        "inbound_duration": 4,
                    }
                ],
            },
            "external",
        ),
    ],
)
def test_an_invalid_call_description_is_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidCallError, match=message) as caught:
        Call.from_dict(data)
    assert caught.value.code == "invalid_call"


def test_a_call_description_round_trips_through_json_shape() -> None:
    call = Call(
        "inbound",
        AU_MOBILE,
        US_BIZ,
        70,
        forward=Forward(GB_MOBILE, 65),
        transfers=(
            Transfer("user", US_USER, 10, 50, caller_id=US_OTHER),
            Transfer("external", AU_MOBILE, 20),
        ),
    )
    assert Call.from_dict(call.to_dict()) == call


def test_number_rental_is_priced_per_month_from_the_seed() -> None:
    quote = price_number_rental(load_card("default"), AU_MOBILE, months=3)
    (line,) = quote.lines
    assert (line.kind, line.quantity, line.unit) == ("number_rental", Decimal(3), "months")
    assert line.unit_price == cents("6")
    assert quote.total == cents("18")
    assert price_number_rental(load_card("passthrough"), US_BIZ).total == cents("1")
    with pytest.raises(DestinationNotPricedError):
        price_number_rental(load_card("default"), "+4930123456")  # no DE local numbers


def test_connect_fee_and_six_second_increments_from_a_card(tmp_path: Path) -> None:
    path = copy_card(
        tmp_path / "c",
        header={"first_increment": "30", "next_increment": "6", "connect_fee": '"0.001"'},
    )
    card = read_card(path)
    quote = price_call(card, Call("outbound", US_BIZ, US_OTHER, 31))
    (line,) = quote.lines
    assert line.quantity == Decimal("0.6")  # 30 s + one 6 s increment
    assert line.amount == 13_000 * 36 // 60 + 1_000  # 0.0078 + connect fee 0.001
    assert price_call(card, Call("outbound", US_BIZ, US_OTHER, 0)).total == 0  # no connect fee


rates = st.builds(
    VoiceRate,
    per_minute=st.integers(0, 5 * money.DOLLAR),
    first_increment_s=st.integers(1, 120),
    next_increment_s=st.integers(1, 120),
    connect_fee=st.integers(0, 100_000),
    rounding=st.sampled_from(["none", "up_to_cent"]),
    ref=st.just(RateRef("t", "1", "voice.csv", 2)),
)


@given(rates, st.integers(0, 20_000), st.integers(0, 20_000))
def test_a_longer_leg_never_costs_less(rate: VoiceRate, a: int, b: int) -> None:
    short, long = sorted((a, b))
    assert rate.cost(short) <= rate.cost(long)


@given(rates, st.integers(1, 20_000))
def test_a_leg_costs_its_started_increments_at_the_rate_plus_connect_fee(
    rate: VoiceRate, duration: int
) -> None:
    rest = max(0, duration - rate.first_increment_s)
    increments = ceil(rest / rate.next_increment_s)
    billed = rate.first_increment_s + increments * rate.next_increment_s
    exact = Fraction(rate.per_minute * billed, 60)
    expected = ceil(exact) + rate.connect_fee  # to the micro-unit, never down
    if rate.rounding == "up_to_cent":
        expected = ceil(Fraction(expected, CENT)) * CENT
    assert rate.cost(duration) == expected
    assert rate.cost(0) == 0


@settings(max_examples=50)
@given(st.integers(0, 3600), st.integers(0, 3600))
def test_a_longer_call_never_costs_less_on_the_shipped_card(a: int, b: int) -> None:
    card = load_card("default")
    short, long = sorted((a, b))
    for to in (US_OTHER, AU_MOBILE, GB_MOBILE):
        assert (
            price_call(card, Call("outbound", US_BIZ, to, short)).total
            <= price_call(card, Call("outbound", US_BIZ, to, long)).total
        )
    per_minute = card.voice_rate("outbound", "US", AU_MOBILE).per_minute
    expected = ceil(long / 60) * per_minute  # started minutes at the rate, no cent rounding
    assert price_call(card, Call("outbound", US_BIZ, AU_MOBILE, long)).total == expected


@given(rates, st.integers(0, 10 * money.DOLLAR))
def test_max_seconds_is_the_longest_leg_the_budget_covers(rate: VoiceRate, budget: int) -> None:
    seconds = rate.max_seconds(budget, limit=20_000)
    assert 0 <= seconds <= 20_000
    assert rate.cost(seconds) <= budget
    if 0 < seconds < 20_000 - rate.next_increment_s:
        assert rate.cost(seconds + 1) > budget  # one second more starts an unaffordable increment
    if seconds == 0:
        assert rate.cost(1) > budget


def test_max_seconds_for_a_us_call_holds_whole_minutes() -> None:
    rate = load_card("default").voice_rate("outbound", "US", US_OTHER)
    assert rate.max_seconds(cents("0.03")) == 120  # 2 min = 0.026 -> 0.03; 3 min = 0.039 -> 0.04
    assert rate.max_seconds(cents("0.01")) == 0  # 1 min = 0.013 -> 0.02 does not fit
    assert rate.max_seconds(cents("0.02")) == 60
