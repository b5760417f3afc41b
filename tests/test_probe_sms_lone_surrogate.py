"""A lone surrogate (JSON "\\ud83d") in a message text is refused alike by every endpoint that
takes one: 422 `invalid_text` with its position, as `POST /v1/sms/segments` documents; nothing
is charged, and the refusal comes at the text rule of the policy order."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from apikit import Tenant, tenant


def _raw(t: Tenant, path: str, body: dict[str, Any], text: str) -> Any:
    """POST ``body`` with ``"text": <text>`` written raw into the JSON (escapes kept)."""
    encoded = json.dumps(body)[:-1] + f', "text": "{text}"}}'
    headers = {**t.auth, "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    return t.client.post(path, content=encoded.encode(), headers=headers)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/inbound", "/v1/quotes/sms"])
def test_a_lone_surrogate_in_the_text_is_invalid_text_with_its_position(
    api: Any, path: str
) -> None:
    t = tenant(api)
    assert t.number is not None
    body: dict[str, Any] = {"from": t.number, "to": "+14155550111"}
    if path == "/v1/messages":
        body["user"] = t.user
    elif path == "/v1/messages/inbound":
        body = {"from": "+14155550111", "to": t.number}
    before = t.balance()
    response = _raw(t, path, body, "ok \\ud83d")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["code"], problem["position"]) == ("invalid_text", 3)
    assert "lone surrogate" in problem["detail"]
    assert t.balance() == before


def test_a_whole_surrogate_pair_written_as_escapes_is_sent(api: Any) -> None:
    t = tenant(api)
    assert t.number is not None
    body = {"from": t.number, "to": "+14155550111", "user": t.user}
    response = _raw(t, "/v1/messages", body, "ok \\ud83d\\ude00")
    assert response.status_code == 201, response.text
    assert (response.json()["encoding"], response.json()["segments"]) == ("UCS-2", 1)


def test_an_invalid_text_is_refused_before_the_sending_number(api: Any) -> None:
    t = tenant(api)
    body = {"from": "+14155550199", "to": "+14155550111", "user": t.user}
    response = _raw(t, "/v1/messages", body, "\\udc00")
    assert response.json()["code"] == "invalid_text"


def test_a_text_over_the_limit_is_text_too_long_even_with_a_lone_surrogate(api: Any) -> None:
    t = tenant(api)
    assert t.number is not None
    body = {"from": t.number, "to": "+14155550111", "user": t.user}
    response = _raw(t, "/v1/messages", body, "a" * 1600 + "\\ud83d")
    assert response.json()["code"] == "text_too_long"
