"""Refusal sentences of the SMS policy are true: a US toll-free number is a US number that is not
SMS-enabled (SMS is for local and mobile numbers), and country codes take the right article."""

from __future__ import annotations

import pytest

from talktime import policy


def test_a_toll_free_number_is_refused_with_the_number_types_that_have_sms() -> None:
    number = policy.SendingNumber("+18005550100", 1, "US", "active", sms_enabled=False)
    with pytest.raises(policy.NumberNotSmsEnabledError) as info:
        policy.require_sending_number(number, number.e164, 1)
    assert "local and mobile numbers" in info.value.detail
    assert "SMS is available on US, CA, GB and AU numbers" not in info.value.detail


@pytest.mark.parametrize(
    ("from_country", "to_country", "expected"),
    [
        ("AU", "US", "from an AU number to a US number"),
        ("US", "GB", "from a US number to a GB number"),
        ("GB", "MX", "from a GB number to an MX number"),
        ("CA", "FR", "from a CA number to an FR number"),
    ],
)
def test_a_cross_country_refusal_reads_with_the_right_article(
    from_country: str, to_country: str, expected: str
) -> None:
    with pytest.raises(policy.SmsCrossCountryError) as info:
        policy.require_sms_route(from_country, to_country)
    assert expected in info.value.detail


def test_an_inbound_cross_country_refusal_reads_with_the_right_article() -> None:
    with pytest.raises(policy.SmsCrossCountryError) as info:
        policy.require_sms_route("US", "AU", inbound=True)
    assert "received from a US number on an AU number" in info.value.detail
