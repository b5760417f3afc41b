"""SMS pricing: per segment from the first seed (default card), carrier pass-through rounded up
to the cent in both directions from the second seed (passthrough card)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talktime import money, sms
from talktime.numbers import InvalidNumberError
from talktime.rating import DestinationNotPricedError, InvalidUsageError, load_card, price_sms

from ratecards import SHIPPED

US = "+14155550123"
US2 = "+12015550123"
CA = "+16135550123"
GB = "+447400123456"
AU = "+61412345678"
DE = "+4915123456789"


def price(card: str, frm: str, to: str, text: str, **kw: object) -> int:
    return price_sms(load_card(card), frm, to, text, **kw).total  # type: ignore[arg-type]


def test_a_local_sms_costs_one_cent_per_segment() -> None:
    quote = price_sms(load_card("default"), US, US2, "Your table is ready.")
    (line,) = quote.lines
    assert (line.kind, line.quantity, line.unit) == ("sms", Decimal(1), "segments")
    assert line.unit_price == quote.total == money.parse("0.01")
    assert str(line.rate).startswith(f"default@{SHIPPED}:sms.csv:")
    assert price("default", US, CA, "a" * 161) == money.parse("0.02")  # 2 x 153 septets
    assert price("default", CA, US, "a" * 160) == money.parse("0.01")


def test_special_characters_limit_a_segment_to_70_characters() -> None:
    assert price("default", US, US2, "é" * 70) == money.parse("0.01")  # é is GSM-7
    assert price("default", US, US2, "ñ" * 70) == money.parse("0.01")
    assert price("default", US, US2, "😀" * 35) == money.parse("0.01")  # 70 UTF-16 units
    assert price("default", US, US2, "ç" * 71) == money.parse("0.02")  # UCS-2: 67 per part


def test_an_international_sms_costs_one_cent_plus_the_country_rate() -> None:
    quote = price_sms(load_card("default"), US, GB, "Hello")
    line = quote.lines[0]
    assert line.unit_price == money.parse("0.01") + money.parse("0.04")
    assert price("default", US, GB, "a" * 200) == 2 * money.parse("0.05")


def test_inbound_sms_is_free_in_default_and_charged_in_passthrough() -> None:
    assert price("default", GB, US, "Hi", direction="inbound") == 0
    quote = price_sms(load_card("passthrough"), US2, US, "Hi", direction="inbound")
    assert quote.lines[0].unit_price == money.parse("0.0083")
    assert quote.total == money.parse("0.01")  # rounded up to the nearest cent


def test_passthrough_rounds_each_message_up_to_the_cent() -> None:
    quote = price_sms(load_card("passthrough"), US, US2, "a" * 300)  # 2 segments
    (line,) = quote.lines
    assert line.unrounded == 2 * money.parse("0.0083")  # 0.0166
    assert line.amount == quote.total == money.parse("0.02")
    assert line.rounding == "up_to_cent"
    assert price("passthrough", US, US2, "a" * 1000) == money.parse("0.06")  # 7 x 0.0083 = 0.0581


def test_smart_encoding_can_save_segments() -> None:
    text = "Don’t miss it — we’re open “late” tonight! " * 2  # curly quotes force UCS-2
    plain = price("default", US, US2, text)
    smart = price("default", US, US2, text, smart_encoding=True)
    assert smart < plain
    assert smart == money.parse("0.01")


def test_unpriced_countries_and_bad_numbers_are_refused() -> None:
    with pytest.raises(DestinationNotPricedError) as caught:
        price("passthrough", US, DE, "Hallo")
    assert caught.value.code == "destination_not_priced"
    with pytest.raises(DestinationNotPricedError):
        price("default", US, "+17875550123", "PR is not the US")
    with pytest.raises(InvalidNumberError):
        price("default", "4155550123", US2, "no plus")
    with pytest.raises(InvalidUsageError):
        price("default", US, US2, "x", direction="sideways")


@settings(max_examples=60)
@given(st.text(max_size=400))
def test_default_local_sms_costs_segments_times_a_cent(text: str) -> None:
    try:
        segments = sms.segment(text).segments
    except sms.InvalidTextError:
        return
    assert price("default", US, US2, text) == segments * money.CENT
    passthrough = price("passthrough", US, US2, text)
    assert passthrough == money.round_up(segments * 8_300, money.CENT)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=400), st.booleans(), st.sampled_from(["outbound", "inbound"]))
def test_a_passed_segmentation_prices_exactly_as_segmenting_again(
    text: str, smart: bool, direction: str
) -> None:
    card = load_card("passthrough")
    smart = smart and direction == "outbound"  # an inbound quote refuses smart encoding
    try:
        done = sms.segment(text, smart_encoding=smart)
    except sms.InvalidTextError:
        return  # lone surrogates are refused before pricing
    given_ = price_sms(card, US, US2, text, direction, smart, segmentation=done)  # type: ignore[arg-type]
    again = price_sms(card, US, US2, text, direction, smart)  # type: ignore[arg-type]
    assert given_ == again
