"""What an unexpected error logs: never the statement parameters of the failed SQL (a webhook
secret being written, key hashes, phone numbers), on either backend."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import _client
from talktime.logs import ConsoleFormatter, JsonFormatter

from apikit import tenant

_SQLITE_TRIGGER = (
    "CREATE TRIGGER refuse_update BEFORE UPDATE ON webhook_endpoints "
    "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
)
_PG_FUNCTION = (
    "CREATE FUNCTION refuse_update() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$ LANGUAGE plpgsql"
)
_PG_TRIGGER = (
    "CREATE TRIGGER refuse_update BEFORE UPDATE ON webhook_endpoints "
    "FOR EACH ROW EXECUTE FUNCTION refuse_update()"
)


def _refuse_endpoint_updates(db_url: str) -> None:
    """Make every UPDATE of a webhook endpoint fail inside the database (not an
    OperationalError, so the API answers 500 and logs the traceback)."""
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(_SQLITE_TRIGGER)
        else:
            conn.exec_driver_sql(_PG_FUNCTION)
            conn.exec_driver_sql(_PG_TRIGGER)
    engine.dispose()


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """The app on the test's database, webhook URLs on loopback allowed; the trigger a test
    adds is dropped afterwards (PostgreSQL's test database is emptied, not recreated, between
    tests, and the trigger made every later test's endpoint update fail)."""
    yield from _client(db_url, tmp_path, webhooks_allow_private=True)
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER IF EXISTS refuse_update"
            + ("" if engine.dialect.name == "sqlite" else " ON webhook_endpoints")
        )
        if engine.dialect.name != "sqlite":
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS refuse_update()")
    engine.dispose()


def test_a_failed_secret_rotation_logs_no_webhook_secret(
    api: Any, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    t = tenant(api, number=None)
    created = api.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hooks"}, headers=t.auth
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()["id"]
    _refuse_endpoint_updates(db_url)
    with caplog.at_level(logging.ERROR, logger="talktime.api"):
        answer = api.post(f"/v1/webhooks/endpoints/{endpoint}/rotate-secret", headers=t.auth)
    assert answer.status_code == 500
    assert "whsec_" not in answer.text
    records = [r for r in caplog.records if r.exc_info]
    assert records, "the 500 was not logged with its traceback"
    for record in records:
        for formatter in (JsonFormatter(), ConsoleFormatter()):
            line = formatter.format(record)
            assert "refused by a trigger" in line  # the cause is still logged
            assert "whsec_" not in line
            assert "[parameters:" not in line or "hidden due to hide_parameters" in line
