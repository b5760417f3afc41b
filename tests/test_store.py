"""Storage: engine settings and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from talktime.config import Settings
from talktime.store import backend_name, current_revision, head_revision, make_engine, upgrade


def test_fresh_database_is_at_the_newest_migration(engine: sa.Engine) -> None:
    assert head_revision() is not None
    assert current_revision(engine) == head_revision()


def test_upgrade_twice_is_harmless(engine: sa.Engine) -> None:
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_backend_name_matches_the_url(db_url: str, engine: sa.Engine) -> None:
    assert backend_name(db_url) == engine.dialect.name


def test_sqlite_engine_is_durable_by_default(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", Settings())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    engine.dispose()


def test_sqlite_synchronous_follows_the_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", Settings(sqlite_synchronous="NORMAL"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first, second = (
        make_engine(url, Settings(sqlite_busy_timeout_ms=0)),
        make_engine(url, Settings(sqlite_busy_timeout_ms=0)),
    )
    with first.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with first.begin(), pytest.raises(sa.exc.OperationalError, match="locked"), second.begin():
        pass
    with second.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    first.dispose()
    second.dispose()


@pytest.mark.postgres
def test_postgresql_url_without_driver_uses_psycopg(pg_admin_url: str) -> None:
    plain = pg_admin_url.replace("postgresql+psycopg://", "postgresql://")
    engine = make_engine(plain)
    assert engine.dialect.driver == "psycopg"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    engine.dispose()


def test_unsupported_database_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        make_engine("mysql://x@localhost/db")
