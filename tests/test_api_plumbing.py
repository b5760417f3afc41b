"""API plumbing: request ids, the 500 of last resort, body size limit, unknown routes, id
bounds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.api.middleware import nul_field
from talktime.config import Settings
from talktime.errors import TalktimeError

import apikit


def _client(tmp_path: Path) -> TestClient:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @app.post("/echo")
    def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    return TestClient(app, raise_server_exceptions=False)


def test_a_request_id_is_made_up_and_returned(tmp_path: Path) -> None:
    response = _client(tmp_path).get("/nowhere")
    assert len(response.headers["x-request-id"]) == 32
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_the_clients_request_id_is_kept_and_put_in_the_problem(tmp_path: Path) -> None:
    response = _client(tmp_path).get("/nowhere", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    assert response.json()["code"] == "not_found"


def test_a_hostile_request_id_is_replaced(tmp_path: Path) -> None:
    response = _client(tmp_path).get("/nowhere", headers={"X-Request-ID": "x" * 500})
    assert response.headers["x-request-id"] != "x" * 500


def test_an_unexpected_error_is_a_logged_500_without_a_stack_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="talktime.api"):
        response = _client(tmp_path).get("/boom", headers={"X-Request-ID": "r-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "r-500"
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == "r-500"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert any(getattr(r, "request_id", None) == "r-500" for r in caplog.records)
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)


class _BrokenLedgerError(TalktimeError):
    code = "broken_ledger"
    status = 500
    title = "Broken ledger"


class _DeclinedError(TalktimeError):
    code = "declined"
    status = 402
    title = "Declined"


def test_a_refusal_answered_with_a_5xx_is_logged_with_its_code_and_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))

    @app.get("/broken")
    def broken() -> None:
        raise _BrokenLedgerError("The ledger does not add up.", account_id=7)

    @app.get("/declined")
    def declined() -> None:
        raise _DeclinedError("The card was declined.")

    client = TestClient(app, raise_server_exceptions=False)

    with caplog.at_level(logging.INFO, logger="talktime.api"):
        response = client.get("/broken", headers={"X-Request-ID": "r-5xx"})
        client.get("/declined", headers={"X-Request-ID": "r-4xx"})
    assert response.status_code == 500
    assert response.json()["code"] == "broken_ledger"
    assert response.json()["request_id"] == "r-5xx"
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == "r-5xx"]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert getattr(logged[0], "code", None) == "broken_ledger"
    assert "broken_ledger" in logged[0].getMessage()
    assert "The ledger does not add up." in logged[0].getMessage()
    # a refusal the client can act on (4xx) is not an error of the service
    assert not [r for r in caplog.records if getattr(r, "request_id", None) == "r-4xx"]


def test_every_response_says_nosniff_once(tmp_path: Path) -> None:
    # JSON (health degraded: this database is not migrated), a problem from a route, the
    # middleware's own refusals (413, NUL), the 500 of last resort and a HEAD: a browser never
    # guesses another type than the declared one
    client = _client(tmp_path)
    answers = [
        client.get("/healthz"),
        client.get("/nowhere"),
        client.get("/v1/balance"),
        client.post("/echo", json={"a": "b"}),
        client.post("/echo", json={"a": "x" * 70_000}),
        client.post("/echo", json={"a": "\x00"}),
        client.get("/boom"),
        client.head("/healthz"),
    ]
    assert [r.status_code for r in answers] == [503, 404, 401, 200, 413, 422, 500, 503]
    for response in answers:
        assert response.headers.get_list("x-content-type-options") == ["nosniff"], response


def test_a_body_over_the_limit_is_refused_with_413(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.post("/echo", json={"a": "b"}).json() == {"a": "b"}
    response = client.post("/echo", json={"a": "x" * 70_000})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_streamed_body_over_the_limit_is_refused_with_413(tmp_path: Path) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"a": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = _client(tmp_path).post(
        "/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_a_numeric_path_id_too_large_for_the_database_is_a_422_naming_it(api: Any) -> None:
    t = apikit.tenant(api)
    spec = api.get("/openapi.json").json()
    checked = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            params = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            ints = {p["name"] for p in params if p["schema"].get("type") == "integer"}
            if not ints:
                continue
            url = path
            for p in params:
                url = url.replace(f"{{{p['name']}}}", str(2**64) if p["name"] in ints else "x1")
            who = apikit.ADMIN if path.startswith("/v1/admin") else t.auth
            headers = {**who, **apikit.idem()}
            response = api.request(method.upper(), url, headers=headers, json={})
            assert response.status_code == 422, (method, path, response.text)
            assert any(name in response.text for name in ints), response.text
            checked.append(f"{method.upper()} {path}")
    assert "POST /v1/webhooks/deliveries/{delivery_id}/redeliver" in checked
    assert "DELETE /v1/numbers/{number_id}" in checked


def test_a_ledger_cursor_too_large_for_an_id_is_a_422_naming_it(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    response = api.get("/v1/ledger", params={"cursor": "9" * 19}, headers=t.auth)
    assert response.status_code == 422
    assert "cursor" in response.text
    assert api.get("/v1/ledger", params={"cursor": "9" * 18}, headers=t.auth).status_code == 200


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/calls/%00"),
        ("GET", "/v1/users/a%00b"),
        ("DELETE", "/v1/keys/%00"),
        ("GET", "/v1/ledger?reference=a%00b"),
    ],
)
def test_a_nul_character_in_the_path_or_query_is_a_422_on_both_backends(
    api: Any, method: str, url: str
) -> None:
    t = apikit.tenant(api, number=None)
    response = api.request(method, url, headers={**t.auth, **apikit.idem()})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert "NUL" in response.json()["detail"]


def test_a_nul_character_in_a_json_string_is_refused_and_nothing_is_written(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    before = api.get("/v1/users", headers=t.auth).json()
    for body in ('{"name": "a\\u0000b"}', '{"name": "a\\\\\\u0000b"}'):
        response = api.post(
            "/v1/users", content=body, headers={**t.auth, "content-type": "application/json"}
        )
        assert response.status_code == 422, body
        assert "NUL" in response.json()["detail"]
    assert api.get("/v1/users", headers=t.auth).json() == before


def test_a_nul_in_a_send_names_the_field_as_other_422s_do_and_keeps_the_sentence(
    api: Any,
) -> None:
    t = apikit.tenant(api, credit="1.00")
    before = t.balance()["available"]
    body = (
        f'{{"from": "{t.number}", "to": "+14155550111", "text": "a\\u0000b", "user": "{t.user}"}}'
    )
    response = api.post(
        "/v1/messages",
        content=body,
        headers={**t.auth, **apikit.idem(), "content-type": "application/json"},
    )
    assert response.status_code == 422
    problem = response.json()
    sentence = (
        "NUL characters (U+0000) are not allowed in the request body; remove them and try again."
    )
    assert problem["code"] == "invalid_request"
    assert problem["detail"] == sentence
    assert problem["field"] == "text"
    assert problem["errors"] == [{"field": "text", "message": sentence}]
    assert t.balance()["available"] == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"name": "a\\u0000b"}', "name"),
        (b'{"a": "ok", "b": {"c": ["x", "y\\u0000"]}, "d": "\\u0000"}', "b.c.1"),
        (b'{"ok": 1, "k\\u0000": "v\\u0000"}', "k\x00"),
        (b'{"a": "\\u0000", "a": "fine"}', "a"),  # a duplicate key's first value
        (b'["\\u0000"]', "0"),
        (b'"\\u0000"', ""),  # the body itself
        (b'{"a": "\\u0000", ', ""),  # not JSON: no field to name
    ],
)
def test_the_nul_field_is_the_path_of_the_first_string_holding_one(body: bytes, field: str) -> None:
    assert nul_field(body) == field


def test_an_escaped_backslash_before_u0000_is_text_and_accepted(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    body = '{"name": "a\\\\u0000b"}'  # JSON for the seven characters a\u0000b
    response = api.post(
        "/v1/users", content=body, headers={**t.auth, "content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "a\\u0000b"
