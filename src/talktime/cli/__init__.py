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
    """Console-script entry point. A database without talktime's tables (never migrated, or
    migrated by an older version) is refused with the command that fixes it, not a traceback."""
    try:
        app()
    except Exception as exc:
        if not _missing_table(exc):
            raise
        try:
            fail(
                "database_not_migrated",
                "the database has no talktime tables, or an older schema: run "
                "`talktime db upgrade` first",
            )
        except typer.Exit as stop:  # outside the app, so not turned into an exit by Typer
            raise SystemExit(stop.exit_code) from None


def _missing_table(exc: BaseException) -> bool:
    """SQLite's "no such table" or PostgreSQL's undefined_table (42P01)."""
    import sqlalchemy as sa

    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return "no such table" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "42P01"


__all__ = ["app", "main"]
