"""Test fixtures: a fresh, migrated database per test on SQLite and on a real PostgreSQL server.

A test that takes `db_url` (or `engine`) runs twice: `[sqlite]` and `[postgresql]`. SQLite gets a
copy of a migrated template file; PostgreSQL gets the session's migrated database, emptied. The
server is a throwaway cluster started once per session (see tests/pgserver.py), or the server in
`TALKTIME_TEST_PG_URL` when set. If it cannot be started the PostgreSQL tests fail when `CI=true`
and are skipped with a loud warning otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

from talktime.store import make_engine, upgrade

import pgserver


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of the maintenance database of the session's PostgreSQL server."""
    given = os.environ.get("TALKTIME_TEST_PG_URL")
    if given:
        yield given
        return
    try:
        # fsync off: a throwaway cluster that no test crashes (the crash tests kill talktime's
        # processes, never PostgreSQL), so the flushes only cost time (about 7% of the
        # PostgreSQL tests). `synchronous_commit` stays on; the benchmarks keep fsync on.
        server = pgserver.start(install=True, fsync=False)
    except pgserver.PostgresUnavailableError as exc:
        if _ci():
            pytest.fail(f"PostgreSQL is required on CI and could not be started: {exc}")
        warnings.warn(f"SKIPPING PostgreSQL tests: {exc}", stacklevel=1)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server.url()
    finally:
        server.stop()


def _autocommit(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


@pytest.fixture(scope="session")
def pg_database(pg_admin_url: str) -> Iterator[str]:
    """URL of this session's migrated PostgreSQL database; tests empty it, never recreate it.

    Creating a database per test costs about a second (the template copy is WAL-logged); emptying
    every table with one TRUNCATE costs milliseconds.
    """
    name = f"talktime_test_{os.getpid()}"
    admin = _autocommit(pg_admin_url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if url in _EMPTIERS:
            _EMPTIERS.pop(url).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


_EMPTIERS: dict[str, sa.Engine] = {}


def _emptier(url: str) -> sa.Engine:
    """An autocommit engine that keeps its one connection to ``url`` between tests: a new
    connection (password authentication over TCP) cost ~12 ms of the ~25 ms of each emptying.
    Idle in autocommit between tests, it holds no lock and no snapshot."""
    if url not in _EMPTIERS:
        _EMPTIERS[url] = sa.create_engine(
            url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0, pool_pre_ping=True
        )
    return _EMPTIERS[url]


def _empty_pg_database(url: str) -> None:
    """Close every other connection to the database, delete every row and restart the sequences.

    DELETE on a few small tables is ~20 ms; TRUNCATE creates new files and fsyncs, ~0.5 s.
    Foreign-key triggers are off for the transaction so the order of the deletes does not matter.
    """
    with _emptier(url).connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        tables = conn.exec_driver_sql(
            "SELECT quote_ident(tablename) FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).scalars()
        script = ["BEGIN", "SET LOCAL session_replication_role = replica"]
        script += [f"DELETE FROM {name}" for name in tables]
        script += [
            "SELECT setval(c.oid, 1, false) FROM pg_class c "
            "WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace",
            "COMMIT",
        ]
        conn.exec_driver_sql(";\n".join(script))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test's database is copied from."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name("template.db-wal").exists()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database at the newest migration, on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "talktime.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_database")
    _empty_pg_database(url)
    yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on the test's fresh database, disposed afterwards."""
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


def _client(db_url: str, tmp_path: Path, **settings: Any) -> Iterator[Any]:
    """An in-process client of the app on ``db_url`` with the admin key (and ``settings``)."""
    from fastapi.testclient import TestClient

    from talktime.api import create_app
    from talktime.config import Settings

    import apikit

    app = create_app(
        Settings(
            database_url=db_url,
            admin_key=apikit.ADMIN_KEY,
            rate_cards_dir=str(tmp_path / "cards"),
            **settings,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
        app.state.engine.dispose()


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """An in-process client of the app on the test's database, with an admin key."""
    yield from _client(db_url, tmp_path)


@pytest.fixture
def api_without_db(tmp_path: Path) -> Iterator[Any]:
    """The `api` client's app on an empty in-memory SQLite database instead of each backend: for
    what no database changes (the OpenAPI document), checked once instead of per backend."""
    yield from _client("sqlite://", tmp_path)


@pytest.fixture
def wallet(db_url: str) -> Iterator[Any]:
    """The wallet on the test's database (beside an `api` client), with an engine of its own:
    to read events, expire holds and check every invariant. Files that need a wallet on the
    `engine` fixture define their own `wallet`."""
    from talktime.wallet import Wallet

    w = Wallet.open(db_url)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Typer `CliRunner` whose settings point at the test's database (and at no config
    file), the settings cache cleared before and after."""
    from typer.testing import CliRunner

    from talktime.config import get_settings

    monkeypatch.setenv("TALKTIME_DATABASE_URL", db_url)
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    get_settings.cache_clear()
    try:
        yield CliRunner()
    finally:
        get_settings.cache_clear()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        (tmp_path / "empty.db").touch()  # an empty file: a missing one is database_not_found
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    name = f"empty_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def paying(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """An in-process client of an app whose payment provider is the deterministic `test` one."""
    yield from _client(db_url, tmp_path, payment_provider="test")
