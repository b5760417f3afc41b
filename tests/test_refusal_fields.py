"""Every 422 refusal of client input names the input at fault as `field` (a dotted path, as
the validation 422s write it) and carries `errors: [{"field", "message"}]`, whichever layer
refused it: validation, the service, policy, rating, the number classifier or webhooks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from talktime.errors import TalktimeError, naming

import apikit

UNKNOWN_USER = "usr_nobody"
INVALID = "+312093523"  # E.164 in form, but no number range is assigned to it
UNPRICED = "+34941706778"  # a Spanish fixed line: the default card prices no ES number
GB_MOBILE = "+447400123456"
TOLL_FREE = "+18002752273"
WEEK = 7 * 24 * 3600


def _named(response: Any, code: str, field: str) -> dict[str, Any]:
    """The problem of ``response``: a 422 with ``code`` naming ``field`` in both places, its
    `errors` entry carrying the problem's own sentence (a validation 422 says it after the
    field's name)."""
    assert response.status_code == 422, response.text
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    assert problem["field"] == field, problem
    assert problem["errors"][0]["field"] == field, problem
    message = problem["errors"][0]["message"]
    assert problem["detail"] in (message, f"{field}: {message}"), problem
    return problem


# --- sends: the direct path and the generic one answer alike -----------------------------------

SENDS: dict[str, tuple[Callable[[apikit.Tenant], dict[str, Any]], str, str]] = {
    "unknown user": (lambda t: {"user": UNKNOWN_USER}, "unknown_user", "user"),
    "media": (lambda t: {"media": ["https://a.example/x.png"]}, "mms_not_supported", "media"),
    "text too long": (lambda t: {"text": "a" * 1601}, "text_too_long", "text"),
    "empty text": (lambda t: {"text": ""}, "invalid_request", "text"),
    "from not the account's": (
        lambda t: {"from": "+14155550199"},
        "number_not_sms_enabled",
        "from",
    ),
    "to in another country": (lambda t: {"to": GB_MOBILE}, "sms_cross_country", "to"),
    "to not a valid number": (lambda t: {"to": INVALID}, "invalid_number", "to"),
    "to malformed": (lambda t: {"to": "+1415"}, "invalid_request", "to"),
}


@pytest.mark.parametrize("case", list(SENDS))
def test_a_refused_send_names_the_field_at_fault_on_the_direct_and_the_generic_path(
    api: Any, case: str
) -> None:
    t = apikit.tenant(api, credit="1.00")
    change, code, field = SENDS[case]
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user, **change(t)}
    answers = []
    for path in ("/v1/messages", "/v1/messages?path=generic"):  # a query string: generic
        response = api.post(path, json=body, headers={**t.auth, **apikit.idem()})
        problem = _named(response, code, field)
        problem.pop("request_id")
        answers.append(problem)
    assert answers[0] == answers[1]


def test_a_send_whose_text_is_not_unicode_names_the_text(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    content = json.dumps({"from": t.number, "to": "+14155550111", "user": t.user})
    content = content[:-1] + ', "text": "a\\ud83d"}'  # a lone surrogate, as JSON may carry it
    headers = {**t.auth, **apikit.idem(), "content-type": "application/json"}
    _named(api.post("/v1/messages", content=content, headers=headers), "invalid_text", "text")


INBOUND: dict[str, tuple[dict[str, Any], str, str]] = {
    "media": ({"media": ["https://a.example/x.png"]}, "mms_not_supported", "media"),
    "to not the account's": ({"to": "+14155550199"}, "number_not_sms_enabled", "to"),
    "from another country": ({"from": GB_MOBILE}, "sms_cross_country", "to"),
    "from not a valid number": ({"from": INVALID}, "invalid_number", "from"),
}


@pytest.mark.parametrize("case", list(INBOUND))
def test_a_refused_inbound_message_names_the_field_at_fault(api: Any, case: str) -> None:
    t = apikit.tenant(api)
    change, code, field = INBOUND[case]
    body = {"from": "+14155550111", "to": t.number, "text": "hi", **change}
    _named(t.post("/v1/messages/inbound", body), code, field)


# --- calls -------------------------------------------------------------------------------------

CALLS: dict[str, tuple[dict[str, Any], str, str]] = {
    "from not a valid number": ({"from": INVALID}, "invalid_number", "from"),
    "to not a valid number": ({"to": INVALID}, "invalid_number", "to"),
    "to not priced": ({"to": UNPRICED}, "destination_not_priced", "to"),
    "unknown user": ({"user": UNKNOWN_USER}, "unknown_user", "user"),
    "inbound on another's number": (
        {"direction": "inbound", "from": "+14155550111", "to": "+14155550199"},
        "number_not_receiving",
        "to",
    ),
}


@pytest.mark.parametrize("case", list(CALLS))
def test_a_refused_call_names_the_number_or_user_at_fault(api: Any, case: str) -> None:
    t = apikit.tenant(api, credit="1.00")
    change, code, field = CALLS[case]
    body = {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user}
    _named(t.post("/v1/calls", {**body, **change}), code, field)


@pytest.mark.parametrize(
    ("description", "code", "field"),
    [
        (
            {"duration": 5, "forward": {"to": "+14155550112", "duration": 5}},
            "invalid_call",
            "forward",
        ),
        (
            {
                "duration": 5,
                "transfers": [{"kind": "external", "to": UNPRICED, "outbound_duration": 5}],
            },
            "destination_not_priced",
            "transfers.0.to",
        ),
    ],
)
def test_completing_a_call_with_a_leg_that_cannot_be_priced_names_the_leg_field(
    api: Any, description: dict[str, Any], code: str, field: str
) -> None:
    t = apikit.tenant(api, credit="1.00")
    call = t.authorize()
    assert call.status_code == 201, call.text
    response = t.post(f"/v1/calls/{call.json()['id']}/complete", description)
    _named(response, code, field)


# --- quotes (no database: one backend) ---------------------------------------------------------

SMS_QUOTES: dict[str, tuple[dict[str, Any], str, str]] = {
    "from empty": ({"from": ""}, "invalid_request", "from"),
    "to malformed": ({"to": "+1 415 555 0111"}, "invalid_request", "to"),
    "from not a valid number": ({"from": INVALID}, "invalid_number", "from"),
    "to not a valid number": ({"to": INVALID}, "invalid_number", "to"),
    "from cannot send SMS": ({"from": TOLL_FREE}, "number_not_sms_enabled", "from"),
    "inbound on a number that cannot receive SMS": (
        {"direction": "inbound", "to": TOLL_FREE},
        "number_not_sms_enabled",
        "to",
    ),
    "to in another country": ({"to": GB_MOBILE}, "sms_cross_country", "to"),
    "text too long": ({"text": "a" * 1601}, "text_too_long", "text"),
    "smart encoding of an inbound message": (
        {"direction": "inbound", "smart_encoding": True},
        "invalid_usage",
        "smart_encoding",
    ),
}


@pytest.mark.parametrize("case", list(SMS_QUOTES))
def test_a_refused_sms_quote_names_the_field_at_fault(api_without_db: Any, case: str) -> None:
    change, code, field = SMS_QUOTES[case]
    body = {"from": "+14155550100", "to": "+14155550111", "text": "hi", **change}
    _named(api_without_db.post("/v1/quotes/sms", json=body), code, field)


def _transfer(**fields: Any) -> dict[str, Any]:
    return {"kind": "external", "to": "+14155550112", "outbound_duration": 5, **fields}


CALL_QUOTES: dict[str, tuple[dict[str, Any], str, str]] = {
    "from empty": ({"from": ""}, "invalid_request", "from"),
    "a transfer to empty": ({"transfers": [_transfer(to="")]}, "invalid_request", "transfers.0.to"),
    "from not a valid number": ({"from": INVALID}, "invalid_number", "from"),
    "to not a valid number": ({"to": INVALID}, "invalid_number", "to"),
    "to not priced": ({"to": UNPRICED}, "destination_not_priced", "to"),
    "a transfer's caller ID not a valid number": (
        {"transfers": [_transfer(caller_id=INVALID)]},
        "invalid_number",
        "transfers.0.caller_id",
    ),
    "an outbound call forwarded": (
        {"forward": {"to": "+14155550112", "duration": 5}},
        "invalid_call",
        "forward",
    ),
    "an inbound call forwarded to an unpriced number": (
        {"direction": "inbound", "forward": {"to": UNPRICED, "duration": 5}},
        "destination_not_priced",
        "forward.to",
    ),
    "a duration over a week": ({"duration": WEEK + 1}, "invalid_call", "duration"),
    "the second transfer over a week": (
        {"transfers": [_transfer(), _transfer(outbound_duration=WEEK + 1)]},
        "invalid_call",
        "transfers.1.outbound_duration",
    ),
    "an external transfer with an answered leg": (
        {"transfers": [_transfer(inbound_duration=5)]},
        "invalid_call",
        "transfers.0.inbound_duration",
    ),
}


@pytest.mark.parametrize("case", list(CALL_QUOTES))
def test_a_refused_call_quote_names_the_field_at_fault(api_without_db: Any, case: str) -> None:
    change, code, field = CALL_QUOTES[case]
    body = {"direction": "outbound", "from": "+14155550100", "to": "+14155550111", "duration": 5}
    _named(api_without_db.post("/v1/quotes/calls", json={**body, **change}), code, field)


def test_the_quote_schemas_carry_the_e164_pattern_of_the_other_endpoints(
    api_without_db: Any,
) -> None:
    schemas = api_without_db.get("/openapi.json").json()["components"]["schemas"]
    pattern = schemas["MessageIn"]["properties"]["to"]["pattern"]
    numbers = {
        "SmsQuoteRequest": ("from", "to"),
        "CallQuoteRequest": ("from", "to"),
        "ForwardBody": ("to",),
        "TransferBody": ("to",),
    }
    for schema, fields in numbers.items():
        for name in fields:
            assert schemas[schema]["properties"][name]["pattern"] == pattern, (schema, name)
    caller_id = schemas["TransferBody"]["properties"]["caller_id"]["anyOf"]
    assert {"type": "null"} in caller_id
    assert any(option.get("pattern") == pattern for option in caller_id), caller_id


# --- numbers, users, settings, webhooks, statements --------------------------------------------


@pytest.mark.parametrize(
    ("e164", "code"), [(UNPRICED, "destination_not_priced"), (INVALID, "invalid_number")]
)
def test_adding_a_number_that_cannot_be_rented_names_e164(api: Any, e164: str, code: str) -> None:
    t = apikit.tenant(api, credit="5.00", number=None)
    _named(t.post("/v1/numbers", {"e164": e164}), code, "e164")


def test_an_unknown_acting_user_is_named_and_an_empty_id_is_said_to_be_empty(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    unknown = api.post(
        "/v1/users", json={"name": "Bo", "acting_user": UNKNOWN_USER}, headers=t.auth
    )
    problem = _named(unknown, "unknown_user", "acting_user")
    assert (
        problem["detail"] == f"User {UNKNOWN_USER} is not a user of this account; create it first."
    )
    empty = api.patch(f"/v1/users/{t.user}", json={"name": "Bo", "acting_user": ""}, headers=t.auth)
    problem = _named(empty, "unknown_user", "acting_user")
    assert (
        problem["detail"] == "The acting_user id is empty; give the id of a user of this account."
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/settings/monthly-limit", {"monthly_limit": "10.00"}),
        ("/v1/settings/low-balance", {"low_balance_threshold": "1.00"}),
        ("/v1/settings/auto-recharge", {"enabled": False}),
    ],
)
def test_a_settings_change_for_an_unknown_user_names_user(
    api: Any, path: str, body: dict[str, Any]
) -> None:
    t = apikit.tenant(api, number=None)
    response = api.put(path, json={**body, "user": UNKNOWN_USER}, headers=t.auth)
    _named(response, "unknown_user", "user")
    response = api.put(path, json={**body, "user": ""}, headers=t.auth)
    problem = _named(response, "unknown_user", "user")
    assert problem["detail"] == "The user id is empty; give the id of a user of this account."


def test_a_purchase_for_an_unknown_user_names_user(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    response = t.post("/v1/credits", {"amount": "1.00", "user": UNKNOWN_USER})
    _named(response, "unknown_user", "user")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"url": "http://127.0.0.1/hook"}, "webhook_url_not_allowed", "url"),
        ({"url": "ftp://1.1.1.1/hook"}, "webhook_url_not_allowed", "url"),
        ({"event_types": ["message.nope"]}, "invalid_event_types", "event_types"),
        ({"event_types": [" "]}, "invalid_event_types", "event_types"),
    ],
)
def test_a_refused_webhook_endpoint_names_url_or_event_types(
    api: Any, body: dict[str, Any], code: str, field: str
) -> None:
    t = apikit.tenant(api, number=None)
    created = api.post(
        "/v1/webhooks/endpoints", json={"url": "https://1.1.1.1/hook"}, headers=t.auth
    )
    assert created.status_code == 201, created.text
    response = api.post(
        "/v1/webhooks/endpoints", json={"url": "https://1.1.1.1/hook", **body}, headers=t.auth
    )
    _named(response, code, field)
    response = api.patch(
        f"/v1/webhooks/endpoints/{created.json()['id']}", json=body, headers=t.auth
    )
    _named(response, code, field)


def test_a_statement_of_an_invalid_period_names_the_path_parameter(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    _named(api.get("/v1/statements/2026-13", headers=t.auth), "invalid_period", "period")


# --- the mechanism -----------------------------------------------------------------------------


def test_naming_keeps_the_more_precise_field_a_refusal_named_inside() -> None:
    with pytest.raises(TalktimeError) as caught, naming("transfers"), naming("transfers.0.to"):
        raise TalktimeError("refused")
    assert caught.value.extra["field"] == "transfers.0.to"
    with pytest.raises(TalktimeError) as caught, naming("to"):
        raise TalktimeError("refused", field="forward.to")
    assert caught.value.extra["field"] == "forward.to"
