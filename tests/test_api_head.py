"""HEAD is answered wherever GET is (RFC 9110 §9.1): the GET's status and headers, Content-Length
included, and no body; it was a 405 with `Allow: GET`. A 405 lists HEAD next to GET."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import apikit
from live import serve

_VARYING = {"x-request-id", "date"}
"""Headers two answers to the same request may differ in."""


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k not in _VARYING]


def _same_but_the_body(api: Any, url: str, headers: dict[str, str]) -> httpx.Response:
    got = api.get(url, headers=headers)
    head = api.head(url, headers=headers)
    assert head.status_code == got.status_code, url
    assert _headers(head) == _headers(got), url
    assert head.headers.get("content-length") == str(len(got.content)), url
    assert head.content == b"", url
    return head


def test_head_answers_every_get_operation_with_its_status_and_headers_and_no_body(
    api: Any,
) -> None:
    t = apikit.tenant(api, credit="1.00")
    t.sms("+14155550111")
    spec = api.app.openapi()
    urls = [
        (path, re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in spec["paths"].items()
        if "get" in operations and path != "/metrics"  # its counters change with each request
    ]
    assert len(urls) > 15
    for path, url in urls:
        auth = apikit.ADMIN if path.startswith("/v1/admin") else t.auth
        _same_but_the_body(api, url, auth)
        _same_but_the_body(api, url, {})  # a 401 with its WWW-Authenticate where a key is needed
    for page in ("/", "/calculator", "/openapi.json", "/docs"):
        assert _same_but_the_body(api, page, {}).status_code == 200


def test_head_of_the_balance_and_the_health_check_is_a_200_without_a_body(api: Any) -> None:
    t = apikit.tenant(api, number=None)
    assert _same_but_the_body(api, "/v1/balance", t.auth).status_code == 200
    assert _same_but_the_body(api, "/healthz", {}).status_code == 200
    refused = _same_but_the_body(api, "/v1/balance", {})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="talktime"'


def test_head_where_no_get_is_served_is_a_405_whose_allow_leaves_head_out(
    api_without_db: Any,
) -> None:
    response = api_without_db.head("/v1/messages")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("DELETE", "/healthz", "GET, HEAD"), ("PUT", "/v1/keys", "GET, HEAD, POST")],
)
def test_a_405_lists_head_next_to_get(
    api_without_db: Any, method: str, path: str, allow: str
) -> None:
    response = api_without_db.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["detail"] == f"{method} is not allowed on {path}; use {allow}."


def test_the_openapi_document_has_no_head_operations(api_without_db: Any) -> None:
    spec = api_without_db.app.openapi()
    assert not [path for path, operations in spec["paths"].items() if "head" in operations]


def test_head_over_http_on_a_served_process_is_the_get_without_its_body(tmp_path: Path) -> None:
    with serve(f"sqlite:///{tmp_path / 'live.db'}") as server:
        got = httpx.get(f"{server.base_url}/healthz")
        head = httpx.head(f"{server.base_url}/healthz")
        assert head.status_code == got.status_code == 200
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.content == b""
        refused = httpx.head(f"{server.base_url}/v1/balance")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="talktime"'
