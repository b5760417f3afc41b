"""A malformed phone number in any body is a 422 with one sentence saying what an E.164 number
is (it was pydantic's raw regex on messages and calls), and the schema still documents it."""

from __future__ import annotations

from typing import Any

import pytest

import apikit

SENTENCE = "to: must be an E.164 number: '+', country code and digits (+14155550100)"


@pytest.mark.parametrize("bad", ["+1 415 555 0100", "14155550100", "+1415", "+14155550100x", ""])
def test_a_malformed_number_on_a_message_is_a_422_saying_what_e164_is(api: Any, bad: str) -> None:
    t = apikit.tenant(api, credit="5.00")
    before = t.balance()["available"]
    response = t.sms(bad)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_request"
    assert problem["detail"] == SENTENCE
    assert "pattern" not in problem["detail"]
    assert problem["errors"][0]["field"] == "to"
    assert t.balance()["available"] == before


def test_a_malformed_number_on_a_call_is_a_422_saying_what_e164_is(api: Any) -> None:
    t = apikit.tenant(api, credit="5.00")
    body = {"direction": "outbound", "from": t.number, "to": "+1 (415) 555", "user": t.user}
    response = t.post("/v1/calls", body)
    assert response.status_code == 422
    assert response.json()["detail"] == SENTENCE


def test_the_schema_still_documents_the_e164_form(api_without_db: Any) -> None:
    schemas = api_without_db.get("/openapi.json").json()["components"]["schemas"]
    numbers = [
        field
        for schema in schemas.values()
        for field in schema.get("properties", {}).values()
        if field.get("examples") == ["+14155550100"]
    ]
    assert numbers
    for field in numbers:
        assert field["pattern"] == r"^\+[1-9][0-9]{6,14}$"
        assert (field["minLength"], field["maxLength"]) == (8, 16)
