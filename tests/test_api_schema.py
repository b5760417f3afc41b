"""Schemathesis against the app's own OpenAPI schema: generated requests to every operation
never get a 500, and every response matches its documented status, media type and schema."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from talktime.api import create_app
from talktime.config import Settings
from talktime.store import make_engine, upgrade

import apikit

_TMP = Path(tempfile.mkdtemp(prefix="talktime-schema-"))
_URL = f"sqlite:///{_TMP / 'talktime.db'}"
_engine = make_engine(_URL)
upgrade(_engine)
_engine.dispose()
app = create_app(
    Settings(database_url=_URL, admin_key=apikit.ADMIN_KEY, rate_cards_dir=str(_TMP / "cards"))
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
_HEADERS: dict[str, dict[str, str]] = {}


def _headers(who: str) -> dict[str, str]:
    """Auth headers; the first call seeds an account with a key, a user and a number."""
    if not _HEADERS:
        with TestClient(app) as client:
            t = apikit.tenant(client, credit="5.00")
        _HEADERS["account"] = t.auth
        _HEADERS["admin"] = apikit.ADMIN
    return _HEADERS[who]


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    shutil.rmtree(_TMP, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_500_and_every_response_matches_the_schema(case: Any) -> None:
    who = "admin" if case.path.startswith("/v1/admin") else "account"
    headers = {**_headers(who), "Idempotency-Key": "schemathesis"}
    if case.headers and "Idempotency-Key" in case.headers:
        headers.pop("Idempotency-Key")
    case.call_and_validate(
        headers=headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
