"""Smart encoding never sends an empty message: a text of only invisible format characters
(zero-width space, soft hyphen, word joiner, BOM), which smart encoding removes, is refused as
empty (422 `invalid_request`, field `text`) and charges nothing; without smart encoding it is a
one-segment UCS-2 message; both backends."""

from __future__ import annotations

from typing import Any

import pytest

from apikit import tenant


@pytest.mark.parametrize("text", ["\u200b", "\ufeff", "\u00ad\u2060"])
def test_a_text_that_smart_encoding_empties_is_refused_as_empty(api: Any, text: str) -> None:
    t = tenant(api)
    before = t.balance()
    response = t.sms("+14155550111", text, smart_encoding=True)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["code"], problem["field"]) == ("invalid_request", "text")
    assert "invisible" in problem["detail"]
    assert t.balance() == before
    plain = t.sms("+14155550111", text)
    assert plain.status_code == 201, plain.text
    assert (plain.json()["encoding"], plain.json()["segments"]) == ("UCS-2", 1)


def test_a_text_with_visible_characters_keeps_smart_encoding(api: Any) -> None:
    t = tenant(api)
    response = t.sms("+14155550111", "\u200bhi\ufeff", smart_encoding=True)
    assert response.status_code == 201, response.text
    assert (response.json()["encoding"], response.json()["segments"]) == ("GSM-7", 1)
