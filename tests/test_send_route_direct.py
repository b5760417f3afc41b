"""`POST /v1/messages` answers every request through its direct path exactly as FastAPI's generic
handler answers it: the same status, body, headers and effects, for usual and malformed
requests alike (`api.routes.messages.SendRoute`)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from talktime.api import create_app
from talktime.api.routes import messages as routes
from talktime.config import Settings
from talktime.store import make_engine, upgrade

import apikit

DIRECT = routes._direct_send
"""Kept before any test replaces it (a hypothesis test's examples share one monkeypatch)."""
NUMBER = "+14155550100"
OTHER_NUMBER = "+14155550199"


def _settings(path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{path / 'db.sqlite'}",
        admin_key=apikit.ADMIN_KEY,
        rate_cards_dir=str(path / "cards"),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A database with two accounts (keys, users, a number each, credit for a few sends):
    each example runs on two copies of it."""
    path = tmp_path_factory.mktemp("direct-send")
    engine = make_engine(_settings(path).database_url)
    upgrade(engine)
    engine.dispose()
    with TestClient(create_app(_settings(path))) as client:
        ours = apikit.tenant(client, plan="startup", credit="0.05", number=NUMBER)
        theirs = apikit.tenant(client, credit="1.00", number=OTHER_NUMBER)
    return path, {"ours": ours.key, "theirs": theirs.key, "user": ours.user}


_GENERATED = {"id", "created_at", "request_id", "instance", "transaction_id", "reference"}


def _problem_free(value: Any) -> Any:
    """The body without what differs between two runs of the same request: generated ids
    (and references to them), times and request ids."""
    if isinstance(value, dict):
        return {k: _problem_free(v) for k, v in value.items() if k not in _GENERATED}
    if isinstance(value, list):
        return [_problem_free(v) for v in value]
    return value


_VALID_BODY = {"from": NUMBER, "to": "+14155550111", "text": "Your code is 1234", "user": "@"}

bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "from": st.sampled_from([NUMBER, OTHER_NUMBER, "+447700900123", "123"]),
            "to": st.sampled_from(["+14155550111", "+16135550123", "+447700900123", "x"]),
            "text": st.one_of(
                st.sampled_from(["hi", "Ünïcödé ✓ text", "", "x" * 1601, 5]),
                st.text(max_size=30),
            ),
            "user": st.sampled_from(["@", "usr_nope", ""]),
        },
        optional={
            "media": st.sampled_from([None, [], ["https://example.com/a.png"]]),
            "smart_encoding": st.sampled_from([True, False, "yes", "on", 1, "1", 0, None]),
            "extra": st.just(1),
        },
    ),
    st.sampled_from(
        [b"{", b"[]", b'"text"', b"", b'{"text": "\\ud800"}', b"\xff\xfe", b"[" * 30_000]
    ),
)

requests = st.fixed_dictionaries(
    {
        "body": bodies,
        "key": st.sampled_from(["fresh", "again", "", "   ", "k" * 161, "two", "same-twice", None]),
        "auth": st.sampled_from(["ours", "theirs", "admin", "wrong", "basic", "empty", None]),
        "content_type": st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "text/plain", None]
        ),
        "query": st.sampled_from(["", "?x=1"]),
    }
)

_USUAL = {
    "body": dict(_VALID_BODY),
    "key": "fresh",
    "auth": "ours",
    "content_type": "application/json",
    "query": "",
}


_RUNS_OUT = [{**_USUAL, "body": {**_VALID_BODY, "text": "x" * 1600}}] * 11
"""Eleven sends of 11 segments: the world's credit covers nine."""


def _send(
    client: TestClient, keys: dict[str, str], request: dict[str, Any], index: int
) -> tuple[int, list[tuple[str, str]], Any]:
    body = request["body"]
    if isinstance(body, dict):
        body = {k: (keys["user"] if v == "@" else v) for k, v in body.items()}
        content = json.dumps(body).encode()
    else:
        content = body
    headers: list[tuple[str, str]] = []
    if request["content_type"] is not None:
        headers.append(("content-type", request["content_type"]))
    auth = request["auth"]
    if auth in ("ours", "theirs"):
        headers.append(("authorization", f"Bearer {keys[auth]}"))
    elif auth == "admin":
        headers.append(("authorization", f"Bearer {apikit.ADMIN_KEY}"))
    elif auth == "wrong":
        headers.append(("authorization", f"Bearer {keys['ours'][:-3]}abc"))
    elif auth == "basic":
        headers.append(("authorization", f"Basic {keys['ours']}"))
    elif auth == "empty":
        headers.append(("authorization", "Bearer "))
    key = request["key"]
    if key == "fresh":
        headers.append(("idempotency-key", f"key-{index}"))
    elif key == "again":
        headers.append(("idempotency-key", "key-0"))
    elif key == "two":
        headers += [("idempotency-key", "a"), ("idempotency-key", "b")]
    elif key == "same-twice":
        headers += [("idempotency-key", "same"), ("idempotency-key", "same")]
    elif key is not None:
        headers.append(("idempotency-key", key))
    response = client.post(f"/v1/messages{request['query']}", content=content, headers=headers)
    try:
        parsed: Any = _problem_free(response.json())
    except ValueError:
        parsed = response.text
    # every header but the request's own id, in order (content type and length, a replay's
    # Idempotent-Replayed, ...); ids and times have the same length in both runs
    kept = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    return response.status_code, kept, parsed


@contextmanager
def _copy_of(base: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("db.sqlite", "db.sqlite-wal"):
            if (base / name).exists():
                shutil.copyfile(base / name, Path(tmp) / name)
        (Path(tmp) / "cards").mkdir()
        yield Path(tmp)


def _run(
    base: Path, keys: dict[str, str], script: list[dict[str, Any]]
) -> tuple[list[Any], dict[str, Any]]:
    with _copy_of(base) as path, TestClient(create_app(_settings(path))) as client:
        answers = [_send(client, keys, r, i) for i, r in enumerate(script)]
        headers = {"Authorization": f"Bearer {keys['ours']}"}
        balance = client.get("/v1/balance", headers=headers).json()
        ledger = client.get("/v1/ledger", headers=headers, params={"limit": 500}).json()
    return answers, {"balance": balance, "ledger": _problem_free(ledger)}


def _count_direct_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Serve through the direct path, noting for each request whether it answered (True) or
    left the request to the generic handler (False)."""
    served: list[bool] = []

    async def counted(request: Any) -> Any:
        answer = await DIRECT(request)
        served.append(answer is not None)
        return answer

    monkeypatch.setattr(routes, "_direct_send", counted)
    return served


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=st.lists(requests, min_size=1, max_size=8))
@example(script=[_USUAL, _USUAL, {**_USUAL, "key": "again"}, {**_USUAL, "key": "again"}])
@example(script=_RUNS_OUT)
@example(script=[{**_USUAL, "body": b"[" * 30_000}])  # deeper than json.loads recurses
def test_the_direct_path_answers_every_request_as_the_generic_handler_does(
    world: tuple[Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    script: list[dict[str, Any]],
) -> None:
    base, keys = world
    served = _count_direct_answers(monkeypatch)
    direct = _run(base, keys, script)

    async def generic_only(_request: Any) -> None:
        return None

    monkeypatch.setattr(routes, "_direct_send", generic_only)
    generic = _run(base, keys, script)
    assert direct == generic
    if script[0] in (_USUAL, _RUNS_OUT[0]):
        assert served[0], "a usual request went to the generic handler"
    if script == _RUNS_OUT:
        statuses = [status for status, _, _ in direct[0]]
        assert statuses == [201] * 9 + [402] * 2


def test_a_usual_send_takes_the_direct_path_and_an_unusual_one_the_generic_handler(
    world: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, keys = world
    served = _count_direct_answers(monkeypatch)
    script = [
        _USUAL,
        {**_USUAL, "query": "?x=1"},
        {**_USUAL, "content_type": "text/plain"},
        {**_USUAL, "key": "two"},
        {**_USUAL, "body": {**_VALID_BODY, "extra": 1}},
        {**_USUAL, "body": {**_VALID_BODY, "smart_encoding": "yes"}},
        {**_USUAL, "body": {**_VALID_BODY, "smart_encoding": 1}},
    ]
    answers, _ = _run(base, keys, script)
    assert [status for status, _, _ in answers] == [201, 201, 415, 422, 422, 422, 422]
    assert served == [True, False, False, False, False, False, False]


def test_the_direct_path_reads_the_body_the_middleware_decoded_instead_of_decoding_it_again(
    world: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, keys = world
    served = _count_direct_answers(monkeypatch)

    def no_second_decode(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the send's body was decoded twice")

    monkeypatch.setattr(routes, "json", SimpleNamespace(loads=no_second_decode))
    answers, _ = _run(base, keys, [_USUAL])
    assert [status for status, _, _ in answers] == [201]
    assert served == [True]


def test_a_send_says_nosniff_once_on_either_path(
    world: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # added by the request middleware, outside the route: the direct path cannot drop it
    base, keys = world
    served = _count_direct_answers(monkeypatch)
    script = [_USUAL, {**_USUAL, "query": "?x=1"}, {**_USUAL, "key": "two"}]
    answers, _ = _run(base, keys, script)
    assert served == [True, False, False]
    assert [status for status, _, _ in answers] == [201, 201, 422]
    for _, headers, _ in answers:
        assert headers.count(("x-content-type-options", "nosniff")) == 1, headers


def test_a_client_hanging_up_mid_body_is_not_logged_as_an_unexpected_error(
    api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The direct path let Starlette's ClientDisconnect out: a logged 500 with a traceback and a
    500 in the metrics for a client that was gone. It now hands the request to the generic
    handler, as every other unusual request."""
    t = apikit.tenant(api, credit="1.00")
    before = t.balance()
    headers = [
        (b"authorization", f"Bearer {t.key}".encode()),
        (b"idempotency-key", b"hung-up"),
        (b"content-type", b"application/json"),
        (b"content-length", b"200"),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/messages",
        "raw_path": b"/v1/messages",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    incoming = [
        {"type": "http.request", "body": b'{"from": "+1415', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.ERROR, logger="talktime.api"):
        asyncio.run(api.app(scope, receive, send))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] != 500
    assert t.balance() == before
