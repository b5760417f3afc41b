"""Alembic, driven from code: the migration scripts ship inside the package."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import talktime
from talktime.errors import TalktimeError

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged scripts and at ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database behind ``engine`` up to ``revision``."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return MigrationContext.configure(conn).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    """The newest revision the package ships (read once per process: the scripts are part of
    the installed package; parsing them cost `/healthz` about 20 ms of CPU a call)."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


@functools.cache
def shipped_revisions() -> frozenset[str]:
    """Every revision the package ships (a database at another one was migrated by a newer
    talktime)."""
    return frozenset(s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


def newer_than_package(revision: str | None) -> bool:
    """Whether a database at ``revision`` was migrated past what this package ships: a
    newer talktime upgraded it, and this one can neither read its schema nor downgrade it."""
    return revision is not None and revision not in shipped_revisions()


def newer_sentence(current: str | None, head: str | None) -> str:
    """What to tell an operator whose database a newer talktime migrated."""
    return (
        f"the database is at revision {current!r}, which this talktime ({talktime.__version__}, "
        f"newest revision {head!r}) does not ship: a newer talktime migrated it; run that "
        "version (talktime does not downgrade a database)"
    )


class DatabaseNotMigratedError(TalktimeError):
    """The database has no talktime tables (never migrated) or an older schema."""

    code: ClassVar[str] = "database_not_migrated"
    status: ClassVar[int] = 503
    title: ClassVar[str] = "Database not migrated"


def missing_table(exc: BaseException) -> bool:
    """Whether ``exc`` is the database saying a talktime table is not there (SQLite's "no such
    table", PostgreSQL's undefined_table 42P01): never migrated, or migrated by an older
    version. A `DatabaseNotMigratedError` (the embedded API's refusal for it) counts too."""
    if isinstance(exc, DatabaseNotMigratedError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return "no such table" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "42P01"


def missing_column(exc: BaseException) -> bool:
    """Whether ``exc`` is the database saying a column is not there (SQLite's "no such
    column", PostgreSQL's undefined_column 42703): a database an older talktime migrated
    (0006 lacks 0007's `grants.drained`) when it is behind `head_revision`, a bug otherwise."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return "no such column" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "42703"


def behind(engine: sa.Engine) -> bool:
    """Whether the database is at an older revision than this talktime's newest (False when
    its revision cannot be read)."""
    try:
        current = current_revision(engine)
    except sa.exc.SQLAlchemyError:
        return False
    return current != head_revision() and not newer_than_package(current)


NOT_MIGRATED = (
    "the database has no talktime tables, or an older schema: run `talktime db upgrade` first"
)

EMBEDDED_NOT_MIGRATED = (
    "the database has no talktime tables, or an older schema: run `talktime db upgrade` first, "
    "or open the wallet with `Wallet.open(url, migrate=True)`"
)


@contextmanager
def refuse_unmigrated() -> Iterator[None]:
    """Turn the database's "no such table" error (a different class per backend) raised in the
    block into `DatabaseNotMigratedError`; any other error passes unchanged. Also a decorator."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if missing_table(exc):
            raise DatabaseNotMigratedError(EMBEDDED_NOT_MIGRATED) from exc
        raise
