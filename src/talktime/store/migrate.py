"""Alembic, driven from code: the migration scripts ship inside the package."""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

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


def missing_table(exc: BaseException) -> bool:
    """Whether ``exc`` is the database saying a talktime table is not there (SQLite's "no such
    table", PostgreSQL's undefined_table 42P01): never migrated, or migrated by an older
    version."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    return "no such table" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "42P01"


NOT_MIGRATED = (
    "the database has no talktime tables, or an older schema: run `talktime db upgrade` first"
)
