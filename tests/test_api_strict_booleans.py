"""Boolean fields of request bodies take JSON `true` and `false` only: `"yes"`, `"on"`, `1` or
`"1"` is a 422 naming the field, as the OpenAPI document's `type: boolean` says (pydantic's lax
mode read them as true and applied smart encoding or changed a setting)."""

from __future__ import annotations

import re
from typing import Any

import pytest

import apikit

NOT_BOOLEANS = ["yes", "on", "no", "true", 1, 0, "1", 1.0]


def _boolean_fields(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, field) of every boolean property of every JSON request body."""
    schemas = spec["components"]["schemas"]
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            body = schemas.get(ref.rsplit("/", 1)[-1], {})
            for name, prop in body.get("properties", {}).items():
                kinds = [prop, *prop.get("anyOf", ())]
                if any(kind.get("type") == "boolean" for kind in kinds):
                    found.append((method.upper(), path, name))
    return found


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_request"
    named = {e["field"]: e["message"] for e in problem["errors"]}
    assert named.get(field) == "Input should be a valid boolean", problem


def test_every_boolean_field_of_every_request_body_refuses_what_is_not_a_boolean(
    api: Any,
) -> None:
    t = apikit.tenant(api, number=None)
    fields = _boolean_fields(api.app.openapi())
    assert {(path, field) for _, path, field in fields} == {
        ("/v1/messages", "smart_encoding"),
        ("/v1/quotes/sms", "smart_encoding"),
        ("/v1/sms/segments", "smart_encoding"),
        ("/v1/settings/auto-recharge", "enabled"),
        ("/v1/webhooks/endpoints/{endpoint_id}", "enabled"),
    }
    for method, path, field in fields:
        url = re.sub(r"\{[^}]+\}", "we_1", path)
        for value in NOT_BOOLEANS:
            response = api.request(
                method, url, json={field: value}, headers={**t.auth, **apikit.idem()}
            )
            _refused(response, field)


def test_the_openapi_document_still_types_them_boolean(api_without_db: Any) -> None:
    spec = api_without_db.app.openapi()
    schemas = spec["components"]["schemas"]
    assert schemas["MessageIn"]["properties"]["smart_encoding"]["type"] == "boolean"
    assert schemas["AutoRechargeIn"]["properties"]["enabled"]["type"] == "boolean"


@pytest.mark.parametrize("value", ["yes", "on", 1, "1"])
def test_a_send_with_a_smart_encoding_that_is_not_a_boolean_is_refused_and_charges_nothing(
    api: Any, value: Any
) -> None:
    t = apikit.tenant(api, credit="1.00")
    before = t.balance()["available"]
    response = t.sms("+14155550111", "it’s here", smart_encoding=value)
    _refused(response, "smart_encoding")
    assert response.json()["detail"] == "smart_encoding: Input should be a valid boolean"
    assert t.balance()["available"] == before
    assert t.sms("+14155550111", "it’s here", smart_encoding=True).json()["encoding"] == "GSM-7"


def test_auto_recharge_enabled_no_is_refused_and_leaves_the_setting_alone(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    on = {"enabled": True, "threshold": "5.00", "amount": "20.00"}
    put = api.put("/v1/settings/auto-recharge", json=on, headers=t.auth)
    assert put.status_code == 200, put.text
    response = api.put("/v1/settings/auto-recharge", json={"enabled": "no"}, headers=t.auth)
    _refused(response, "enabled")
    assert t.balance()["auto_recharge"]["enabled"] is True
