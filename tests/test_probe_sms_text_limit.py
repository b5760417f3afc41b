"""The text limit (`sms_max_text_chars`, 1,600) answers 422 `text_too_long` with the limit for
every longer text the body limit lets through, not a generic `invalid_request` naming another
bound past 20,000 characters; both backends."""

from __future__ import annotations

from typing import Any

import pytest

from apikit import tenant


@pytest.mark.parametrize("length", [1601, 20_000, 20_001, 60_000])
def test_every_text_over_the_limit_is_text_too_long_with_the_limit(api: Any, length: int) -> None:
    t = tenant(api)
    before = t.balance()
    outbound = t.sms("+14155550111", "a" * length)
    inbound = t.post(
        "/v1/messages/inbound", {"from": "+14155550111", "to": t.number, "text": "a" * length}
    )
    for response in (outbound, inbound):
        problem = response.json()
        assert (response.status_code, problem["code"], problem["limit"]) == (
            422,
            "text_too_long",
            1600,
        ), problem
        assert f"The text has {length} characters; the limit is 1600." == problem["detail"]
    assert t.balance() == before


def test_a_body_over_the_body_limit_is_still_body_too_large(api: Any) -> None:
    t = tenant(api)
    response = t.sms("+14155550111", "a" * 70_000)
    assert (response.status_code, response.json()["code"]) == (413, "body_too_large")
