"""Requests whose wire form is ambiguous are refused before anything runs: a JSON body that
names a member twice (the decoder kept the last: two `"to"`s sent the message to the second,
two `"text"`s billed the second text), a JSON body in UTF-16 or UTF-32 (the decoder read it),
two Authorization headers (the first key was used) or two Content-Type headers (the first was
used). A path with a trailing slash is a 404 problem, not a bare 307. Until the second session
of 1 Dec each of these was served. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from talktime.api.middleware import duplicate_member, json_body_refusal

import apikit


def _send(api: Any, t: apikit.Tenant, content: bytes, **headers: str) -> Any:
    return api.post(
        "/v1/messages",
        content=content,
        headers={**t.auth, **apikit.idem(), "content-type": "application/json", **headers},
    )


def _refused(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["request_id"] == response.headers["x-request-id"]
    if field is not None:
        assert problem["field"] == field
        assert problem["errors"] == [{"field": field, "message": problem["detail"]}]
    return problem


def test_a_send_naming_a_member_twice_is_a_422_naming_it_and_charges_nothing(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    before, entries = t.balance(), t.ledger()
    twice_to = (
        f'{{"from": "{t.number}", "to": "+14155550111", "to": "+442071838750", '
        f'"text": "hi", "user": "{t.user}"}}'
    ).encode()
    problem = _refused(_send(api, t, twice_to), 422, "to")
    assert problem["code"] == "invalid_request"
    assert problem["detail"] == (
        "The request body names the member 'to' more than once; send each member once."
    )
    twice_text = (
        f'{{"from": "{t.number}", "to": "+14155550111", "text": "a", '
        f'"text": "{"b" * 200}", "user": "{t.user}"}}'
    ).encode()
    _refused(_send(api, t, twice_text), 422, "text")
    assert t.balance() == before
    assert t.ledger() == entries


def test_a_member_named_twice_in_a_nested_object_is_named_by_its_path(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    body = {"direction": "outbound", "from": "+14155550100", "to": "+14155550111"}
    legs = '[{"kind": "outbound", "to": "+14155550111", "to": "+14155550112", "seconds": 60}]'
    content = json.dumps(body)[:-1] + f', "user": "{t.user}", "legs": {legs}}}'
    problem = _refused(
        api.post(
            "/v1/quotes/calls",
            content=content.encode(),
            headers={**t.auth, "content-type": "application/json"},
        ),
        422,
        "legs.0.to",
    )
    assert "'to' more than once (at legs.0.to)" in problem["detail"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32-be"])
def test_a_json_body_in_utf16_or_utf32_is_refused_and_charges_nothing(
    api: Any, encoding: str
) -> None:
    t = apikit.tenant(api, credit="1.00")
    before = t.balance()
    body = json.dumps({"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user})
    problem = _refused(_send(api, t, body.encode(encoding)), 422)
    assert "field" not in problem  # the body as a whole, as the other whole-body 422s
    assert problem["errors"] == [{"field": "", "message": problem["detail"]}]
    assert "send the JSON as UTF-8" in problem["detail"]
    assert t.balance() == before


def test_a_utf8_body_with_a_byte_order_mark_is_accepted_as_rfc_8259_allows(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    body = json.dumps({"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user})
    assert _send(api, t, b"\xef\xbb\xbf" + body.encode()).status_code == 201
    twice = body[:-1] + ', "to": "+14155550112"}'
    _refused(_send(api, t, b"\xef\xbb\xbf" + twice.encode()), 422, "to")  # checked all the same


def _send_with(api: Any, t: apikit.Tenant, headers: list[tuple[str, str]]) -> Any:
    """A usual send whose headers are exactly ``headers`` (repeated ones kept)."""
    body = json.dumps({"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user})
    return api.post("/v1/messages", content=body.encode(), headers=headers)


def test_two_authorization_headers_are_a_401_even_when_one_key_is_valid(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    before = t.balance()
    response = _send_with(
        api,
        t,
        [
            ("authorization", f"Bearer {t.key}"),
            ("authorization", "Bearer junk"),
            ("idempotency-key", "two-keys"),
            ("content-type", "application/json"),
        ],
    )
    problem = _refused(response, 401)
    assert problem["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == 'Bearer realm="talktime"'
    assert t.balance() == before


def test_two_content_type_headers_are_a_415(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    before = t.balance()
    response = _send_with(
        api,
        t,
        [
            ("authorization", f"Bearer {t.key}"),
            ("idempotency-key", "two-types"),
            ("content-type", "application/json"),
            ("content-type", "text/plain"),
        ],
    )
    assert _refused(response, 415)["code"] == "unsupported_media_type"
    assert t.balance() == before


def test_a_trailing_slash_is_a_404_problem_not_a_redirect(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    response = api.get("/v1/balance/", headers=t.auth, follow_redirects=False)
    assert _refused(response, 404)["code"] == "not_found"
    assert api.get("/v1/balance", headers=t.auth).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"a": {"b": 1, "c": 2, "b": 3}}', "a.b"),
        (b'{"x": [{"y": 1}, {"y": 1, "y": 2}], "x": 1}', "x.1.y"),  # document order
        (b'{"a": 1, "b": 2}', ""),
        (b'{"a": ', ""),
    ],
)
def test_the_duplicate_member_is_named_by_its_path_in_document_order(
    body: bytes, field: str
) -> None:
    assert duplicate_member(body) == field
    refusal = json_body_refusal(body)
    assert (refusal.field if refusal else "") == field


def test_a_number_of_more_than_4300_digits_is_named_so_not_called_not_utf8(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    response = api.post(
        "/v1/quotes/sms",
        content=b'{"x": ' + b"9" * 4301 + b"}",
        headers={**t.auth, "content-type": "application/json"},
    )
    problem = _refused(response, 422)
    assert problem["detail"] == (
        "The request body is not valid JSON: a number in it has more than 4,300 digits."
    )


def test_a_missing_key_and_a_wrong_key_get_the_same_401(api: Any) -> None:
    """A missing key had its own sentence ("Send an API key"), a hint the API does not give."""
    t = apikit.tenant(api, number=None)
    answers = [
        api.get("/v1/balance"),
        api.get("/v1/balance", headers={"Authorization": "Basic eDp5"}),
        api.get("/v1/balance", headers={"Authorization": "Bearer"}),
        api.get("/v1/balance", headers={"Authorization": "Bearer tt_nope_nope"}),
        api.get("/v1/balance", headers={"Authorization": t.auth["Authorization"] + "x"}),
    ]
    bodies = {(r.status_code, r.json()["code"], r.json()["detail"]) for r in answers}
    assert bodies == {
        (
            401,
            "unauthorized",
            "The API key is missing, malformed, unknown or revoked; send a valid one: "
            "`Authorization: Bearer tt_...`.",
        )
    }


def test_a_query_or_path_parameter_is_named_by_its_own_name_in_every_refusal(api: Any) -> None:
    """FastAPI's validation named `query.kind` and `path.number_id` where the service's own
    refusals of the same parameters said `kind`: one spelling now, the parameter's name."""
    t = apikit.tenant(api, number=None)
    answers = {
        "kind": [
            t.get("/v1/ledger", kind="foo"),
            api.get("/v1/ledger?kind=a&kind=b", headers=t.auth),
        ],
        "number_id": [
            api.delete("/v1/numbers/18446744073709551616", headers={**t.auth, **apikit.idem()})
        ],
    }
    for field, responses in answers.items():
        for response in responses:
            problem = _refused(response, 422)
            assert (problem["field"], problem["errors"][0]["field"]) == (field, field)


@pytest.mark.parametrize("body", [b'{"\x00": 1}', b"[1,\x00]", b'"\x00"'])
def test_a_raw_nul_byte_in_utf8_json_is_malformed_json_not_an_encoding(body: bytes) -> None:
    """It was answered "The request body is UTF-8 text; send the JSON as UTF-8."."""
    assert json_body_refusal(body) is None  # left to the app's malformed-JSON refusal
