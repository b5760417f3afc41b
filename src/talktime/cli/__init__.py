"""The `talktime` command. Each submodule registers its commands on the shared Typer app."""

from __future__ import annotations

import typer

from talktime.cli import (
    accounts,  # noqa: F401 - registers `accounts create` and `keys create`
    core,  # noqa: F401 - registers commands
    cycle,  # noqa: F401 - registers `cycle run`
    ops,  # noqa: F401 - registers `worker`, `jobs`, `run`
    quote,  # noqa: F401 - registers commands
    rates,  # noqa: F401 - registers commands
    recharge,  # noqa: F401 - registers `recharge run`
    segments,  # noqa: F401 - registers commands
    wallet,  # noqa: F401 - registers `verify`
)
from talktime.cli.app import app, fail


def main() -> None:
    """Console-script entry point. Settings that cannot be used, a database that cannot be
    reached, and one without talktime's tables (never migrated, or migrated by an older
    version) are refused with what to fix, not a traceback."""
    try:
        app()
    except Exception as exc:
        code, sentence = _refusal(exc)
        if not code:
            raise
        try:
            fail(code, sentence)
        except typer.Exit as stop:  # outside the app, so not turned into an exit by Typer
            raise SystemExit(stop.exit_code) from None


LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's lock_not_available: a statement waited `pg_lock_timeout_ms` for a lock."""


def _refusal(exc: Exception) -> tuple[str, str]:
    """(code, sentence) for an error the operator can fix, or ("", "") for a real bug."""
    import sqlalchemy as sa

    from talktime.config import SettingsError, get_settings, hide_password
    from talktime.store.engine import damaged_database, is_sqlite_busy
    from talktime.store.migrate import NOT_MIGRATED, missing_column, missing_table

    if isinstance(exc, SettingsError):
        return exc.code, exc.detail
    if missing_table(exc) or (missing_column(exc) and _schema_behind()):
        return "database_not_migrated", NOT_MIGRATED
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == LOCK_NOT_AVAILABLE:
        settings = get_settings()
        return (
            "database_unavailable",
            f"the database {hide_password(settings.database_url)} kept a lock this command "
            f"needs for longer than pg_lock_timeout_ms ({settings.pg_lock_timeout_ms} ms): "
            "another session holds those rows or tables (a long transaction, a migration); "
            "try again when it is done, or raise TALKTIME_PG_LOCK_TIMEOUT_MS",
        )
    if is_sqlite_busy(exc):
        settings = get_settings()
        return (
            "database_unavailable",
            f"the database {hide_password(settings.database_url)} stayed locked by another "
            f"writer for longer than sqlite_busy_timeout_ms ({settings.sqlite_busy_timeout_ms} "
            "ms): another process is writing to it (a long transaction, a backup, a stopped "
            "process); try again when it is done, or raise TALKTIME_SQLITE_BUSY_TIMEOUT_MS",
        )
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        reason = (str(exc.orig).strip().splitlines() or [str(exc)])[0]
        url = hide_password(get_settings().database_url)
        return (
            "database_unavailable",
            f"the database {url} did not answer: {reason}; check that it is running and "
            "that TALKTIME_DATABASE_URL (or database_url) points at it",
        )
    if isinstance(exc, sa.exc.DatabaseError) and damaged_database(exc):
        # SQLite's own "file is not a database" (or "database disk image is malformed"): the
        # URL names a file that is not a talktime database; no retry will change that
        reason = (str(exc.orig).strip().splitlines() or [str(exc)])[0]
        url = hide_password(get_settings().database_url)
        return (
            "database_unavailable",
            f"the database {url} cannot be used: {reason}; point TALKTIME_DATABASE_URL (or "
            "database_url) at a talktime database, or at a new file for `talktime db upgrade` "
            "to create",
        )
    if isinstance(exc, sa.exc.ProgrammingError) and getattr(exc.orig, "sqlstate", 0) is None:
        # refused by the driver before any SQL ran (psycopg: "invalid connection option")
        reason = (str(exc.orig).strip().splitlines() or [str(exc)])[0]
        url = hide_password(get_settings().database_url)
        return (
            "invalid_settings",
            f"the database URL {url} cannot be used: {reason}; fix TALKTIME_DATABASE_URL "
            "(or database_url)",
        )
    return "", ""


def _schema_behind() -> bool:
    """Whether the configured database is at an older revision than this talktime's (asked
    only when a column was missing: then it needs `db upgrade`; at the newest it is a bug)."""
    from talktime.config import get_settings
    from talktime.store import make_engine
    from talktime.store.migrate import behind

    engine = make_engine(get_settings().database_url)
    try:
        return behind(engine)
    finally:
        engine.dispose()


__all__ = ["app", "main"]
