"""Every 401 carries `WWW-Authenticate: Bearer realm="talktime"` (RFC 9110 §11.6.1: a 401 must
say which scheme the server takes), and the OpenAPI document declares it on every 401."""

from __future__ import annotations

import re
from typing import Any

import pytest

import apikit

CHALLENGE = 'Bearer realm="talktime"'


def _secured_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer tt_nope_secret", "Basic dXNlcjpwYXNz", "Bearer "],
    ids=["missing", "unknown", "basic", "empty"],
)
def test_every_secured_operation_answers_a_refused_key_with_a_bearer_challenge(
    api: Any, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    operations = _secured_operations(api.app.openapi())
    assert len(operations) > 30
    for method, url in operations:
        response = api.request(method, url, headers={**headers, **apikit.idem()})
        assert response.status_code == 401, (method, url, response.text)
        assert response.headers["www-authenticate"] == CHALLENGE, (method, url)
        assert response.json()["code"] == "unauthorized"


def test_a_revoked_key_is_a_401_with_the_challenge_on_both_backends(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    key_id = api.get("/v1/keys", headers=t.auth).json()["keys"][0]["id"]
    assert api.delete(f"/v1/keys/{key_id}", headers=t.auth).status_code == 200
    response = api.get("/v1/balance", headers=t.auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


def test_a_send_refused_for_its_key_carries_the_challenge_on_the_direct_path(api: Any) -> None:
    t = apikit.tenant(api)
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
    response = api.post(
        "/v1/messages",
        json=body,
        headers={"Authorization": "Bearer tt_nope_secret", **apikit.idem()},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


def test_only_401s_carry_the_challenge(api_without_db: Any) -> None:
    assert "www-authenticate" not in api_without_db.get("/healthz").headers
    response = api_without_db.get("/v1/nope")
    assert response.status_code == 404
    assert "www-authenticate" not in response.headers


def test_the_openapi_document_declares_the_challenge_on_every_401(api_without_db: Any) -> None:
    spec = api_without_db.app.openapi()
    declared = [
        operation["responses"]["401"]["headers"]["WWW-Authenticate"]
        for operations in spec["paths"].values()
        for operation in operations.values()
        if "401" in operation["responses"]
    ]
    assert len(declared) == len(_secured_operations(spec))
    for header in declared:
        assert header["required"] is True
        assert header["schema"] == {"type": "string", "enum": [CHALLENGE]}
