"""Policy refuses what the seeds forbid, each with its stable code and status."""

from __future__ import annotations

import pytest

from talktime import policy
from talktime.policy import Actor, SendingNumber


def test_an_inactive_subscription_is_refused_with_403() -> None:
    policy.require_active_subscription("active")
    for status in ("past_due", "canceled"):
        with pytest.raises(policy.SubscriptionInactiveError) as info:
            policy.require_active_subscription(status)
        assert info.value.code == "subscription_inactive"
        assert info.value.status == 403


def test_members_may_send_and_call_but_not_manage_billing() -> None:
    member = Actor("u1", "member")
    policy.require_permission(member, "sms.send")
    policy.require_permission(member, "calls.make")
    with pytest.raises(policy.PermissionDeniedError):
        policy.require_permission(member, "billing.manage")


def test_a_restricted_user_is_refused_even_if_the_role_allows_it() -> None:
    restricted = Actor("u2", "admin", frozenset({"calls.make"}))
    policy.require_permission(restricted, "sms.send")
    with pytest.raises(policy.PermissionDeniedError) as info:
        policy.require_permission(restricted, "calls.make")
    assert info.value.code == "permission_denied"
    assert info.value.status == 403
    assert "restricted" in info.value.detail


def test_unknown_restrictions_are_refused() -> None:
    assert policy.check_restrictions(["sms.send"]) == frozenset({"sms.send"})
    with pytest.raises(policy.UnknownPermissionError):
        policy.check_restrictions(["fly"])


def test_media_is_refused_as_mms() -> None:
    policy.refuse_media(None)
    policy.refuse_media([])
    with pytest.raises(policy.MmsNotSupportedError) as info:
        policy.refuse_media(["https://example.com/cat.png"])
    assert (info.value.code, info.value.status) == ("mms_not_supported", 422)


_OWN = SendingNumber("+14155550100", 1, "US", "active", True)


def test_the_sending_number_must_be_owned_active_and_sms_enabled() -> None:
    policy.require_sending_number(_OWN, _OWN.e164, 1)
    cases = [
        None,
        _OWN.__class__(_OWN.e164, 2, "US", "active", True),
        _OWN.__class__(_OWN.e164, 1, "US", "suspended", True),
        _OWN.__class__(_OWN.e164, 1, "US", "released", True),
        _OWN.__class__(_OWN.e164, 1, "US", "active", False),
        _OWN.__class__("+4930123456", 1, "DE", "active", True),
    ]
    for number in cases:
        with pytest.raises(policy.NumberNotSmsEnabledError) as info:
            policy.require_sending_number(number, _OWN.e164, 1)
        assert (info.value.code, info.value.status) == ("number_not_sms_enabled", 422)


@pytest.mark.parametrize(("a", "b"), [("US", "US"), ("US", "CA"), ("CA", "US"), ("GB", "GB")])
def test_sms_within_a_country_or_between_us_and_canada_is_allowed(a: str, b: str) -> None:
    policy.require_sms_route(a, b)


@pytest.mark.parametrize(("a", "b"), [("US", "GB"), ("GB", "AU"), ("CA", "AU"), ("US", "PR")])
def test_sms_between_other_countries_is_refused(a: str, b: str) -> None:
    with pytest.raises(policy.SmsCrossCountryError) as info:
        policy.require_sms_route(a, b)
    assert (info.value.code, info.value.status) == ("sms_cross_country", 422)


def test_only_us_ca_gb_au_numbers_can_be_sms_enabled() -> None:
    assert {c for c in ("US", "CA", "GB", "AU", "DE", "FR") if policy.sms_capable(c)} == {
        "US",
        "CA",
        "GB",
        "AU",
    }
