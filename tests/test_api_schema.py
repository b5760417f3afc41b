"""Schemathesis against the app's own OpenAPI schema, on SQLite and on PostgreSQL: generated
requests to every operation never get a 500, and every response matches its documented status,
media type and schema (a value one backend stores and the other refuses shows up here).

`TALKTIME_SCHEMA_EXAMPLES` (default 5) sets the examples per operation for a longer local run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import _empty_pg_database
from talktime.api import create_app
from talktime.config import Settings

import apikit

# The schema the cases are generated from (the same on every backend; this app serves no request).
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(database_url="sqlite://"))
)

Seeded = tuple[FastAPI, dict[str, dict[str, str]]]

EXAMPLES = int(os.environ.get("TALKTIME_SCHEMA_EXAMPLES", "5"))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def backend_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """The app on a fresh database of each backend, seeded with an account, a key, a user and a
    number; with the auth headers of that account and of the admin."""
    tmp = tmp_path_factory.mktemp("schema")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp / "talktime.db")
        url = f"sqlite:///{tmp / 'talktime.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _empty_pg_database(url)
    app = create_app(
        Settings(database_url=url, admin_key=apikit.ADMIN_KEY, rate_cards_dir=str(tmp / "cards"))
    )
    with TestClient(app) as client:
        t = apikit.tenant(client, credit="5.00")
    yield app, {"account": t.auth, "admin": apikit.ADMIN}
    app.state.engine.dispose()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_500_and_every_response_matches_the_schema(case: Any, backend_app: Seeded) -> None:
    app, auth = backend_app
    who = "admin" if case.path.startswith("/v1/admin") else "account"
    headers = {**auth[who], "Idempotency-Key": "schemathesis"}
    if case.headers and "Idempotency-Key" in case.headers:
        headers.pop("Idempotency-Key")
    case.call_and_validate(
        app=app,
        headers=headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
