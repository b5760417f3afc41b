"""HTTP plumbing found by probing: the 405's Allow header, bodies that are not JSON objects,
duplicate Idempotency-Key headers, and an API on a database that was never migrated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings

import apikit


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[TestClient]:
    """The app on a fresh SQLite database, for requests that never reach the database."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/v1/keys", "GET, HEAD, POST"),
        ("DELETE", "/v1/keys", "GET, HEAD, POST"),
        ("PUT", "/v1/users/usr_1", "GET, HEAD, PATCH"),
        ("POST", "/v1/webhooks/endpoints/we_1", "GET, HEAD, PATCH, DELETE"),
        ("DELETE", "/healthz", "GET, HEAD"),
    ],
)
def test_a_405_names_every_method_the_path_serves_in_allow_and_its_sentence(
    bare: TestClient, method: str, path: str, allow: str
) -> None:
    # Starlette named only the first route matching the path: OPTIONS /v1/keys said "POST"
    body = _problem(bare.request(method, path), 405, "method_not_allowed")
    assert bare.request(method, path).headers["allow"] == allow
    assert body["detail"] == f"{method} is not allowed on {path}; use {allow}."


def test_an_unknown_path_is_a_404_problem_saying_where_the_paths_are(bare: TestClient) -> None:
    body = _problem(bare.get("/v1/nope"), 404, "not_found")
    assert body["detail"] == "There is no /v1/nope; the API's paths are listed at /docs."


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_json_body_sent_without_the_json_content_type_is_a_415_saying_so(
    bare: TestClient, content_type: str | None
) -> None:
    # curl -d sends application/x-www-form-urlencoded: it was a 422 "request: Input should be
    # a valid dictionary or object to extract fields from", naming no field and no cause
    headers = {"content-type": content_type} if content_type else {}
    response = bare.post("/v1/sms/segments", content=b'{"text": "hi"}', headers=headers)
    body = _problem(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in body["detail"]
    assert (repr(content_type) if content_type else "missing") in body["detail"]


def test_every_operation_with_a_body_documents_the_415(bare: TestClient) -> None:
    schema = bare.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert "415" in operation["responses"], (method, path)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"text":', "The request body is not valid JSON: Expecting value at character 8."),
        (b'{"text": "\xff"}', "The request body is not valid JSON: it is not UTF-8 text."),
        (
            b"[" * 30_000,
            "The request body is not valid JSON: it nests arrays or objects too deeply.",
        ),
        (b"[1]", "The request body must be a JSON object, not an array."),
        (b'"hi"', "The request body must be a JSON object, not a string."),
        (b"7", "The request body must be a JSON object, not a number."),
        (b"", "The request body is missing; send a JSON object."),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_422_that_says_what_is_wrong(
    bare: TestClient, body: bytes, detail: str
) -> None:
    # invalid JSON answered "8: JSON decode error" with the offset as the field "8"; bytes that
    # are not UTF-8 were a 400 `http_400` titled "Http 400"
    response = bare.post(
        "/v1/sms/segments", content=body, headers={"content-type": "application/json"}
    )
    problem = _problem(response, 422, "invalid_request")
    assert problem["detail"] == detail


def test_two_different_idempotency_keys_are_refused_and_nothing_is_charged(api: Any) -> None:
    t = apikit.tenant(api, credit="5.00")
    before = t.balance()
    body = {"from": t.number, "to": "+14155550123", "text": "hi", "user": t.user}
    headers = [
        ("authorization", f"Bearer {t.key}"),
        ("idempotency-key", "first-key"),
        ("idempotency-key", "second-key"),
    ]
    response = api.post("/v1/messages", json=body, headers=headers)
    problem = _problem(response, 422, "invalid_request")
    assert problem["field"] == "Idempotency-Key"
    assert "one Idempotency-Key" in problem["detail"]
    assert t.balance() == before
    # the same key twice is one key: the message is sent, once
    headers[2] = ("idempotency-key", "first-key")
    sent = api.post("/v1/messages", json=body, headers=headers)
    assert sent.status_code == 201, sent.text
    again = api.post("/v1/messages", json=body, headers=headers[:2])
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == sent.json()


def test_a_request_on_an_unmigrated_database_is_a_503_saying_to_migrate(
    unmigrated_url: str,
) -> None:
    # it was a 500 internal_error ("Something went wrong on our side") with a traceback logged
    app = create_app(Settings(database_url=unmigrated_url, admin_key=apikit.ADMIN_KEY))
    with TestClient(app, raise_server_exceptions=False) as client:
        for response in (
            client.get("/v1/balance", headers={"Authorization": "Bearer tt_abc_def"}),
            client.post(
                "/v1/admin/accounts",
                json={"name": "a", "plan": "startup"},
                headers={**apikit.ADMIN, **apikit.idem()},
            ),
        ):
            body = _problem(response, 503, "database_not_migrated")
            assert "talktime db upgrade" in body["detail"]
        assert client.get("/healthz").status_code == 503
    app.state.engine.dispose()


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://talktime@127.0.0.1:1/talktime", "sqlite:////nonexistent/dir/x.db"],
)
def test_a_request_while_the_database_is_down_is_a_503_saying_to_retry(url: str) -> None:
    # it was a 500 internal_error with a traceback in the log: a client could not tell a
    # database outage (retry) from a bug
    app = create_app(Settings(database_url=url, admin_key=apikit.ADMIN_KEY))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/balance", headers={"Authorization": "Bearer tt_abc_def"})
        body = _problem(response, 503, "database_unavailable")
        assert "try again" in body["detail"]
        assert client.get("/healthz").status_code == 503
    app.state.engine.dispose()
