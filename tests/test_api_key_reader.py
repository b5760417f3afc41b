"""API keys on a SQLite file database are looked up on the event loop, and in the thread pool
whenever SQLite is busy: the loop never waits in SQLite's busy handler."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.api import auth, create_app
from talktime.api.auth import key_reader_for
from talktime.config import Settings
from talktime.keys import InvalidApiKeyError
from talktime.store import make_engine, upgrade

import apikit


def _settings(path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{path / 'keys.db'}",
        admin_key=apikit.ADMIN_KEY,
        rate_cards_dir=str(path / "cards"),
    )


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Another process's view: a connection in exclusive locking mode holding a write, so
    every other connection's read is answered "database is locked"."""
    holder = sqlite3.connect(path / "keys.db", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE accounts SET name = name")
        yield
    finally:
        holder.close()


@pytest.fixture
def tenant_key(tmp_path: Path) -> str:
    """A database with one account and its key; no connection of it left open."""
    engine = make_engine(_settings(tmp_path).database_url)
    upgrade(engine)
    engine.dispose()
    with TestClient(create_app(_settings(tmp_path))) as client:
        return apikit.tenant(client, number=None).key


def test_only_a_sqlite_file_database_gets_a_loop_key_reader(tmp_path: Path) -> None:
    assert key_reader_for(make_engine(f"sqlite:///{tmp_path / 'x.db'}")) is not None
    assert key_reader_for(make_engine("sqlite://")) is None
    assert key_reader_for(make_engine("postgresql+psycopg://u@127.0.0.1:1/x")) is None


def test_the_first_lookup_opens_the_connection_in_the_pool_and_the_next_run_on_the_loop(
    tmp_path: Path, tenant_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(_settings(tmp_path))) as client:
        reader = client.app.state.key_reader  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {tenant_key}"}
        assert not reader.connected
        assert client.get("/v1/balance", headers=headers).status_code == 200
        assert reader.connected

        def no_thread_pool(*_args: Any) -> Any:
            raise AssertionError("the key lookup went to the thread pool")

        monkeypatch.setattr(auth, "_lookup", no_thread_pool)
        assert client.get("/v1/balance", headers=headers).status_code == 200
        key_id = client.get("/v1/keys", headers=headers).json()["keys"][0]["id"]
        assert client.delete(f"/v1/keys/{key_id}", headers=headers).status_code == 200
        refused = client.get("/v1/balance", headers=headers)  # revoked: refused at once
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"


def test_a_busy_answer_on_the_loop_sends_the_lookup_to_the_thread_pool(
    tmp_path: Path, tenant_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's "busy" cannot be provoked for a WAL reader while the app's own connections are
    open, so the reader's connection is made to raise the driver's real busy error."""
    with TestClient(create_app(_settings(tmp_path))) as client:
        reader = client.app.state.key_reader  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {tenant_key}"}
        assert client.get("/v1/balance", headers=headers).status_code == 200
        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
        real = auth.authenticate
        on_loop: list[bool] = []

        def authenticate(conn: sa.Connection, token: str, admin: str | None) -> Any:
            on_loop.append(conn is reader._conn)
            if conn is reader._conn:
                raise sa.exc.OperationalError("SELECT ...", {}, busy)
            return real(conn, token, admin)

        monkeypatch.setattr(auth, "authenticate", authenticate)
        assert client.get("/v1/balance", headers=headers).status_code == 200
        assert on_loop == [True, False]  # tried on the loop, answered from the pool
        assert reader.connected  # a busy answer keeps the connection


def test_the_loop_reader_never_waits_and_the_loop_keeps_serving_while_the_database_is_locked(
    tmp_path: Path, tenant_key: str
) -> None:
    """A balance request whose key lookup waits for the lock (in the pool) never blocks the
    loop: a quote is answered while that request is still waiting. No clock is read: a busy
    timeout of a minute keeps the waiting request waiting however slow the machine."""
    settings = _settings(tmp_path).model_copy(update={"sqlite_busy_timeout_ms": 60_000})
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {tenant_key}"}
        answers: dict[str, Any] = {}

        def balance() -> None:
            answers["balance"] = client.get("/v1/balance", headers=headers)

        waiting = threading.Thread(target=balance)
        try:
            with exclusive_lock(tmp_path):  # before the app opened any connection
                waiting.start()
                time.sleep(0.5)
                assert waiting.is_alive()  # opening the connection waits for the lock
                quote = {"from": "+14155550100", "to": "+14155550111", "text": "hi"}
                assert client.post("/v1/quotes/sms", json=quote).status_code == 200
                assert waiting.is_alive()  # answered while the key lookup still waited
        finally:
            waiting.join(timeout=120)  # the lock is gone: the request ends before the client
        assert answers["balance"].status_code == 200


def test_a_lookup_on_the_loop_is_one_select_in_autocommit_and_leaves_no_transaction_open(
    tmp_path: Path, tenant_key: str
) -> None:
    with TestClient(create_app(_settings(tmp_path))) as client:
        reader = client.app.state.key_reader  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {tenant_key}"}
        assert client.get("/v1/balance", headers=headers).status_code == 200
        driver = reader._conn.connection.driver_connection
        statements: list[str] = []
        driver.set_trace_callback(statements.append)
        try:
            assert reader.lookup(tenant_key, None).account_id is not None
            with pytest.raises(InvalidApiKeyError):
                reader.lookup(tenant_key + "x", None)
        finally:
            driver.set_trace_callback(None)
        assert [s.split()[0] for s in statements] == ["SELECT", "SELECT"]
        assert not reader._conn.in_transaction()
        assert not driver.in_transaction
        # no read snapshot is left open: a truncating checkpoint is not held up by a reader
        other = sqlite3.connect(tmp_path / "keys.db", isolation_level=None)
        try:
            other.execute("UPDATE accounts SET name = name")
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            other.close()
        assert busy == 0


def test_a_lookup_that_began_a_transaction_ends_it(
    tmp_path: Path, tenant_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the lookup ever run a statement through SQLAlchemy (which begins a transaction),
    the reader ends that transaction rather than hold a read snapshot open."""
    with TestClient(create_app(_settings(tmp_path))) as client:
        reader = client.app.state.key_reader  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {tenant_key}"}
        assert client.get("/v1/balance", headers=headers).status_code == 200
        real = auth.authenticate

        def authenticate(conn: sa.Connection, token: str, admin: str | None) -> Any:
            conn.execute(sa.text("SELECT 1"))
            return real(conn, token, admin)

        monkeypatch.setattr(auth, "authenticate", authenticate)
        assert reader.lookup(tenant_key, None) is not None
        assert not reader._conn.in_transaction()
        assert not reader._conn.connection.driver_connection.in_transaction
