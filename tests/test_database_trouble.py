"""The service facing database trouble an operator can cause, answered with a stable 503 or a
refusal at start instead of a 500 or silence (each found by an outage audit, second session of
1 Dec): a database one migration behind (PostgreSQL answered 500, SQLite a "try again" 503);
one a newer talktime migrated (the worker said to run `db upgrade`, which refuses it; `serve`
started on it); every pooled PostgreSQL connection in use (a 500 with a traceback); a SQLite
connection opened while the file was read-only (it stayed read-only after the file was
writable again); a SQLite file that is not a database (a 500 with a traceback)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from clikit import talktime_main
from talktime.api import create_app
from talktime.cli.app import check_schema
from talktime.config import Settings
from talktime.store import make_engine, migrate

import apikit


def _migrate_to(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, revision)
    finally:
        engine.dispose()


def _set_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def _app_client(url: str, tmp_path: Path, **settings: Any) -> Any:
    app = create_app(
        Settings(
            database_url=url,
            admin_key=apikit.ADMIN_KEY,
            rate_cards_dir=str(tmp_path / "cards"),
            **settings,
        )
    )
    return app, TestClient(app, raise_server_exceptions=False)


def test_a_request_on_a_database_one_migration_behind_is_the_operators_503(
    unmigrated_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _migrate_to(unmigrated_url, "0006")  # before 0007's grants.drained
    app, client = _app_client(unmigrated_url, tmp_path)
    with client, caplog.at_level(logging.WARNING):
        response = client.post(
            "/v1/admin/accounts",
            json={"name": "Acme", "plan": "startup"},
            headers={**apikit.ADMIN, **apikit.idem()},
        )
    app.state.engine.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_not_migrated"
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged


@pytest.mark.parametrize("args", [["accounts", "create", "Acme", "--plan", "startup"], ["verify"]])
def test_a_command_on_a_database_one_migration_behind_says_to_upgrade_it(
    monkeypatch: pytest.MonkeyPatch, unmigrated_url: str, args: list[str]
) -> None:
    """It said the database did not answer (SQLite), or was a traceback (PostgreSQL)."""
    _migrate_to(unmigrated_url, "0006")  # before 0007's grants.drained
    done = talktime_main(
        monkeypatch, *args, TALKTIME_DATABASE_URL=unmigrated_url, TALKTIME_CONFIG=""
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error[database_not_migrated]: "), done.stderr
    assert "talktime db upgrade" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "0"],
        ["worker", "--once"],
        # these wrote (expiries, free credit, rentals, accounts, keys, payments) or judged the
        # books with code that does not know the newer schema
        ["cycle", "run"],
        ["recharge", "run"],
        ["accounts", "create", "Acme", "--plan", "startup", "--credit", "5.00"],
        ["keys", "create", "--admin"],
        ["verify"],
    ],
)
def test_a_command_on_a_database_a_newer_talktime_migrated_is_refused_so(
    monkeypatch: pytest.MonkeyPatch, db_url: str, args: list[str]
) -> None:
    head = migrate.head_revision()
    assert head is not None
    _set_revision(db_url, "0999")
    try:
        done = talktime_main(monkeypatch, *args, TALKTIME_DATABASE_URL=db_url, TALKTIME_CONFIG="")
    finally:  # PostgreSQL's test database is shared by the session's tests
        _set_revision(db_url, head)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error[database_newer]: "), done.stderr
    assert "a newer talktime migrated it; run that version" in done.stderr
    assert "db upgrade" not in done.stderr


def test_serving_a_database_one_migration_behind_warns_at_start(
    unmigrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    _migrate_to(unmigrated_url, "0008")
    with caplog.at_level(logging.WARNING, logger="talktime.api"):
        check_schema(Settings(database_url=unmigrated_url))
    [warning] = [r.getMessage() for r in caplog.records if r.name == "talktime.api"]
    assert "at revision 0008" in warning
    assert "run `talktime db upgrade`" in warning
    assert "a request that needs the newer schema answers 503" in warning  # not every request


def test_a_request_waiting_past_the_pool_timeout_is_503_service_busy(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's bounded pool (SQLite keeps a connection per request)")
    app, client = _app_client(
        db_url, tmp_path, pg_pool_size=1, pg_max_overflow=0, pg_pool_timeout_seconds=0.2
    )
    with client:
        tenant = apikit.tenant(client, number=None)
        with app.state.engine.connect(), caplog.at_level(logging.WARNING):  # the only one
            response = client.get("/v1/balance", headers=tenant.auth)
        assert client.get("/v1/balance", headers=tenant.auth).status_code == 200
    app.state.engine.dispose()
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "service_busy"
    assert "Every database connection of the service is in use" in problem["detail"]
    assert not [r for r in caplog.records if r.exc_info]


def test_a_sqlite_connection_that_cannot_write_is_dropped_and_the_next_write_works(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tt.db'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:  # this pooled connection now writes nothing, as one that
        conn.exec_driver_sql("PRAGMA query_only=1")  # SQLite opened read-only
    insert = sa.text("INSERT INTO plans (name, monthly_free_credit, updated_at) VALUES (:n, 0, 0)")
    with pytest.raises(sa.exc.OperationalError) as failed, engine.begin() as conn:
        conn.execute(insert, {"n": "first"})
    assert "readonly" in str(failed.value.orig)
    assert failed.value.connection_invalidated
    with engine.begin() as conn:  # a fresh connection: before, the read-only one came back
        conn.execute(insert, {"n": "second"})
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM plans WHERE name = 'second'")).scalar()
    engine.dispose()


def test_a_sqlite_file_that_is_not_a_database_is_a_503_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tt.db"
    path.write_bytes(b"this is not a database" * 300)
    app, client = _app_client(f"sqlite:///{path}", tmp_path)
    with client, caplog.at_level(logging.WARNING):
        response = client.get("/v1/admin/accounts/1", headers=apikit.ADMIN)
    app.state.engine.dispose()
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "database_unavailable"
    assert "damaged or is not a database" in problem["detail"]
    assert [r.levelname for r in caplog.records if "damaged" in r.getMessage()] == ["ERROR"]
    assert not [r for r in caplog.records if r.exc_info]


def test_serving_a_database_that_cannot_be_reached_warns_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`serve` on a PostgreSQL nobody listens on started without a word (the worker warned)."""
    settings = Settings(database_url="postgresql://talktime@127.0.0.1:1/talktime")
    with caplog.at_level(logging.WARNING, logger="talktime.api"):
        check_schema(settings)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "talktime.api"]
    assert "the database cannot be reached now" in warning
    assert "503 database_unavailable" in warning


def test_a_send_waiting_past_the_lock_timeout_for_a_held_account_is_a_503_that_charges_nothing(
    db_url: str, tmp_path: Path
) -> None:
    # another session (an operator's psql, a stuck job) holds the account's row: the send
    # waited for it for ever
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's lock_timeout (SQLite's writer waits sqlite_busy_timeout_ms)")
    app, client = _app_client(db_url, tmp_path, pg_lock_timeout_ms=300)
    with client:
        t = apikit.tenant(client, credit="1.00")
        before = t.balance()
        holder = make_engine(db_url)
        try:
            with holder.begin() as conn:
                conn.execute(
                    sa.text("SELECT id FROM accounts WHERE id = :a FOR UPDATE"),
                    {"a": t.account_id},
                )
                refused = t.sms("+14155550111", key="held-1")
        finally:
            holder.dispose()
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "database_unavailable"
        assert "locked" in refused.json()["detail"]
        assert t.balance() == before  # nothing charged
        again = t.sms("+14155550111", key="held-1")  # the same key once the lock is gone
        assert again.status_code == 201, again.text
    app.state.engine.dispose()


def test_the_lock_timeout_joins_the_options_of_the_url_and_one_written_there_wins(
    db_url: str,
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL session setting")

    def shown(url: str, **settings: Any) -> tuple[str, str]:
        engine = make_engine(url, Settings(database_url=url, **settings))
        try:
            with engine.connect() as conn:
                lock = conn.exec_driver_sql("SHOW lock_timeout").scalar()
                statement = conn.exec_driver_sql("SHOW statement_timeout").scalar()
                return str(lock), str(statement)
        finally:
            engine.dispose()

    assert shown(db_url) == ("5s", "0")  # the default, 5000 ms
    assert shown(db_url, pg_lock_timeout_ms=1234) == ("1234ms", "0")
    assert shown(db_url, pg_lock_timeout_ms=0) == ("0", "0")  # waits for ever
    sep = "&" if "?" in db_url else "?"
    with_options = f"{db_url}{sep}options=-c%20statement_timeout%3D7000"
    assert shown(with_options, pg_lock_timeout_ms=1234) == ("1234ms", "7s")
    own = f"{db_url}{sep}options=-c%20lock_timeout%3D900"
    assert shown(own, pg_lock_timeout_ms=1234) == ("900ms", "0")


def test_a_command_waiting_past_the_lock_timeout_says_another_session_holds_the_lock(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it said "did not answer ...; check that it is running"
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's lock_timeout")
    holder = make_engine(db_url)
    try:
        with holder.begin() as conn:
            conn.exec_driver_sql("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")  # a migration
            done = talktime_main(
                monkeypatch,
                "accounts",
                TALKTIME_CONFIG="",
                TALKTIME_DATABASE_URL=db_url,
                TALKTIME_PG_LOCK_TIMEOUT_MS="300",
            )
    finally:
        holder.dispose()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error[database_unavailable]: the database "), done.stderr
    assert "for longer than pg_lock_timeout_ms (300 ms): another session holds" in done.stderr
