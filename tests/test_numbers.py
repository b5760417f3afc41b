"""Phone numbers: E.164 only, country per +1 region and per Crown Dependency, pricing types."""

from __future__ import annotations

import pytest

from talktime import numbers
from talktime.numbers import InvalidNumberError, NumberInfo, Overrides, classify


@pytest.mark.parametrize(
    ("e164", "country", "kind"),
    [
        ("+14155550123", "US", "local"),  # US reports FIXED_LINE_OR_MOBILE: priced as local
        ("+16135550123", "CA", "local"),
        ("+18005550123", "US", "toll_free"),
        ("+442071234567", "GB", "local"),
        ("+447400123456", "GB", "mobile"),
        ("+4915123456789", "DE", "mobile"),
        ("+4930123456", "DE", "local"),
        ("+61212345678", "AU", "local"),
        ("+61412345678", "AU", "mobile"),
        ("+447012345678", "GB", "other"),  # UK personal numbering
    ],
)
def test_classify_gives_country_and_pricing_type(e164: str, country: str, kind: str) -> None:
    assert classify(e164) == NumberInfo(e164, country, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("e164", "country"),
    [("+17875550123", "PR"), ("+12423591234", "BS"), ("+12423456789", "BS")],
)
def test_other_plus_one_regions_are_not_the_us(e164: str, country: str) -> None:
    assert classify(e164).country == country


@pytest.mark.parametrize(
    ("e164", "country"),
    [
        ("+447781123456", "GG"),
        ("+447911123456", "GG"),
        ("+441481256789", "GG"),
        ("+447797712345", "JE"),
        ("+441534456789", "JE"),
        ("+441624756789", "IM"),
    ],
)
def test_crown_dependencies_are_their_own_countries(e164: str, country: str) -> None:
    assert classify(e164).country == country


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("14155550123", "not an E.164"),
        ("+1 415 555 0123", "not an E.164"),
        ("+1-415-555-0123", "not an E.164"),
        ("", "not an E.164"),
        ("+0123456", "not an E.164"),
        ("+1234567890123456", "not an E.164"),
        ("+1415555", "not a valid phone number"),
        ("+12425550123", "not a valid phone number"),
        ("+999123456789", "cannot be parsed"),
    ],
)
def test_invalid_input_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidNumberError, match=reason) as caught:
        classify(text)
    assert caught.value.code == "invalid_number"
    assert caught.value.status == 422


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidNumberError):
        classify(14155550123)  # type: ignore[arg-type]


def test_classification_is_cached_and_bounded() -> None:
    numbers.cache_clear()
    first = classify("+14155550123")
    assert classify("+14155550123") is first
    info = numbers._classify.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, numbers.CACHE_SIZE)


def test_overrides_remap_a_region_and_type_by_longest_prefix() -> None:
    overrides = Overrides({"GG": "GB"}, {"+4477": "other", "+447781": "local"})
    assert overrides.apply(classify("+447781123456")) == NumberInfo("+447781123456", "GB", "local")
    assert overrides.apply(classify("+447797712345")).type == "other"
    untouched = classify("+61412345678")
    assert overrides.apply(untouched) is untouched
    assert not Overrides()
