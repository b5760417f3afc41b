"""Core commands: version, config, serve, and the `db` group."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

import talktime
from talktime.cli.app import (
    app,
    check_schema,
    console,
    db_app,
    fail,
    print_json,
    refuse_missing_database,
)
from talktime.config import get_settings, hide_password


@app.command()
def version() -> None:
    """Print the talktime version."""
    console.print(talktime.__version__)


@app.command("config")
def show_config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings (environment, talktime.toml, defaults); secrets masked."""
    data = get_settings().public_dict()
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        console.print(f"[bold]{key}[/] = {escape(repr(value))}", highlight=False)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default from settings).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Listen port, 0 to 65535 (default from settings)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
) -> None:
    """Run the HTTP service (uvicorn) on the configured database."""
    import uvicorn

    from talktime import logs

    settings = get_settings()
    refuse_missing_database(settings)
    logs.configure(settings.log_format, settings.log_level)
    check_schema(settings)
    uvicorn.run(
        "talktime.api.app:create_served_app",
        factory=True,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        workers=workers or settings.workers,
        log_config=None,
    )


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or upgrade the database schema to the newest revision."""
    from alembic.util import CommandError

    from talktime.store import current_revision, head_revision, make_engine, upgrade
    from talktime.store.engine import is_sqlite_file
    from talktime.store.migrate import newer_sentence, newer_than_package

    settings = get_settings()
    engine = make_engine(settings.database_url, settings)
    if engine.dialect.name == "sqlite" and not is_sqlite_file(engine):
        engine.dispose()
        fail(
            "invalid_settings",
            "TALKTIME_DATABASE_URL names an in-memory SQLite database, which ends with this "
            "command: nothing would be kept; name a file (sqlite:///./talktime.db)",
        )
    current = current_revision(engine)
    if newer_than_package(current):
        engine.dispose()
        fail("database_newer", newer_sentence(current, head_revision()))
    try:
        upgrade(engine, revision)
    except (CommandError, AssertionError) as exc:
        # an unknown or unreachable target: alembic's own sentence (an empty one, `@` or
        # `<head>+1` (past head) fail an assertion in alembic's resolver, before any migration runs)
        engine.dispose()
        reason = str(exc) or "it resolves to no revision"
        fail(
            "invalid_revision",
            f"cannot upgrade to revision {revision!r}: {reason}; give `head` (the default) or "
            "a revision `talktime db current` names",
        )
    after = current_revision(engine)
    past = ""
    if revision not in ("head", after) and after == current and current is not None:
        # alembic's upgrade to an older revision does nothing: say so rather than nothing
        past = f" (already past revision {revision!r}: talktime does not downgrade a database)"
    console.print(
        f"database {escape(hide_password(settings.database_url))} at revision "
        f"[bold]{after}[/]{escape(past)}",
        highlight=False,
    )
    engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision and the newest one shipped."""
    from talktime.store import current_revision, head_revision, make_engine
    from talktime.store.engine import missing_sqlite_file
    from talktime.store.migrate import newer_than_package

    settings = get_settings()
    path = missing_sqlite_file(settings.database_url)
    if path is not None:  # not created by asking
        console.print(
            f"current: None  head: {head_revision()}  (no database file at {escape(path)}: "
            "`talktime db upgrade` creates it)",
            highlight=False,
        )
        return
    engine = make_engine(settings.database_url, settings)
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        state = "up to date"
    elif newer_than_package(current):
        state = "migrated by a newer talktime: run that version"
    else:
        state = "needs `talktime db upgrade`"
    console.print(f"current: {current}  head: {head}  ({state})", highlight=False)
    engine.dispose()


def _sqlite_file(settings_url: str, command: str) -> str:
    """The path of the SQLite file the database URL names, or a refusal naming what to use."""
    from sqlalchemy.engine import make_url

    url = make_url(settings_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite":
        fail(
            "invalid_settings",
            f"`talktime db {command}` is for a SQLite database; back up PostgreSQL with its "
            "own tools (pg_dump / pg_restore, or a base backup)",
        )
    if database in ("", ":memory:") or database.startswith("file:"):
        fail(
            "invalid_settings",
            f"`talktime db {command}` needs TALKTIME_DATABASE_URL to name a SQLite file "
            "(sqlite:///./talktime.db)",
        )
    return database


@db_app.command("backup")
def db_backup(
    target: Annotated[str, typer.Argument(help="The new file to write the copy to.")],
) -> None:
    """Copy the SQLite database to TARGET while talktime runs (a consistent snapshot)."""
    from talktime.store.backup import BackupError, backup

    settings = get_settings()
    database = _sqlite_file(settings.database_url, "backup")
    refuse_missing_database(settings)
    try:
        revision = backup(database, target)
    except BackupError as exc:
        fail(exc.code, exc.detail)
    console.print(
        f"backed up {escape(database)} to {escape(target)} (revision {revision})", highlight=False
    )


@db_app.command("restore")
def db_restore(
    source: Annotated[str, typer.Argument(help="A backup made with `talktime db backup`.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the database's contents with the backup's.")
    ] = False,
) -> None:
    """Replace the SQLite database's contents with a backup (stop every talktime first)."""
    from talktime.store.backup import BackupError, restore

    settings = get_settings()
    database = _sqlite_file(settings.database_url, "restore")
    if not yes:
        fail(
            "confirmation_required",
            f"this replaces everything in {database} with {source} (what was written since "
            "that backup is lost): stop every talktime process on it, then run again with --yes",
        )
    try:
        revision = restore(source, database)
    except BackupError as exc:
        fail(exc.code, exc.detail)
    console.print(
        f"restored {escape(source)} into {escape(database)} (revision {revision})",
        highlight=False,
    )
