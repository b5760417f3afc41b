"""The shared Typer app and helpers every command module uses."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from talktime.config import Settings

app = typer.Typer(
    name="talktime",
    help="Prepaid usage billing for business calling and SMS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade and inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# Soft wrap: a line of output stays one line however long, also when it goes to a file or a
# pipe, where rich would break it at 80 columns (cron logs grep `breach account ...`); tables
# render the same either way.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def print_json(data: Any) -> None:
    """Print plain data as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fail(code: str, message: str, exit_code: int = 1) -> NoReturn:
    """Print a refusal as `error[code]: sentence` on stderr and exit non-zero (no traceback)."""
    # escape: rich would otherwise eat "[code]" as a markup tag and drop it from the output
    err_console.print(
        f"[bold red]{escape(f'error[{code}]')}[/]: {escape(message)}",
        highlight=False,
        markup=True,
        soft_wrap=True,  # one line, never broken mid-path: scripts and tests grep it
    )
    raise typer.Exit(exit_code)


def _bad_byte(text: str) -> tuple[int, int] | None:
    """(character index, byte) of the first byte Python could not decode as UTF-8 when it
    read ``text`` from the command line or stdin (kept as U+DC80..U+DCFF by surrogateescape)."""
    for index, char in enumerate(text):
        if 0xDC80 <= ord(char) <= 0xDCFF:
            return index, ord(char) - 0xDC00
    return None


def cli_text(text: str, what: str) -> str:
    """``text`` as given on the command line, refused with `error[invalid_text]` naming the
    first byte that is not UTF-8 (Python would otherwise hand it on as a lone surrogate)."""
    bad = _bad_byte(text)
    if bad is not None:
        fail(
            "invalid_text",
            f"the {what} is not valid UTF-8: byte 0x{bad[1]:02X} at character {bad[0]}; "
            "give it as UTF-8 text",
        )
    return text


def read_utf8(data: bytes, source: str) -> str:
    """Decode ``data`` read from ``source`` as UTF-8 (a leading byte order mark dropped), or
    refuse with `error[invalid_text]` naming the offset of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(
            "invalid_text",
            f"{source} is not valid UTF-8: byte 0x{data[exc.start]:02X} at offset {exc.start}; "
            "save it as UTF-8",
        )


def read_stdin() -> str:
    """All of stdin as UTF-8 text (see `read_utf8`)."""
    return read_utf8(sys.stdin.buffer.read(), "stdin")


def refuse_missing_database(settings: Settings) -> None:
    """Refuse a SQLite database file that does not exist, before SQLite creates it empty:
    only `talktime db upgrade` makes a new database (a mistyped path used to leave an empty
    file behind and a `database_not_migrated` refusal that hid the typo)."""
    from talktime.store.engine import missing_sqlite_file

    path = missing_sqlite_file(settings.database_url)
    if path is not None:
        fail(
            "database_not_found",
            f"there is no database file at {path} (nothing was created): run `talktime db "
            "upgrade` to create it, or point TALKTIME_DATABASE_URL (or database_url) at the "
            "existing one",
        )


def revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's migration revision, this version's newest), or `error[database_newer]`
    for a database a newer talktime migrated (`db upgrade` refuses it too: run that version).
    A database that does not answer raises OperationalError: each caller decides."""
    from talktime.store import current_revision, head_revision
    from talktime.store.migrate import newer_sentence, newer_than_package

    current, head = current_revision(engine), head_revision()
    if newer_than_package(current):
        fail("database_newer", newer_sentence(current, head))
    return current, head


def check_schema(settings: Settings) -> None:
    """Before serving: refuse a database a newer talktime migrated (`database_newer`), and warn
    of one an older talktime left behind (a request that needs the newer schema answers 503
    `database_not_migrated` until `talktime db upgrade`, which the service sees without a
    restart) or of one that cannot be reached now (the service reports it request by
    request)."""
    import logging

    import sqlalchemy as sa

    from talktime.store import make_engine

    log = logging.getLogger("talktime.api")
    engine = make_engine(settings.database_url, settings)
    try:
        current, head = revisions(engine)
    except sa.exc.OperationalError as exc:
        log.warning(
            "the database cannot be reached now (%s); requests answer 503 "
            "database_unavailable until it can",
            str(exc.orig).strip().splitlines()[0] if exc.orig else exc,
        )
        return
    finally:
        engine.dispose()
    if current != head:
        log.warning(
            "the database is at revision %s; this version needs %s: run `talktime db upgrade` "
            "(until then a request that needs the newer schema answers 503 "
            "database_not_migrated)",
            current or "none",
            head,
        )


def open_engine(settings: Settings) -> Engine:
    """The configured database's engine for a command that uses an existing database; a
    database a newer talktime migrated is refused (`database_newer`), as by `serve`: this
    version's code must not write (or judge) a schema it does not know."""
    from talktime.store import make_engine

    refuse_missing_database(settings)
    engine = make_engine(settings.database_url, settings)
    refuse_newer_database(engine)
    return engine


def refuse_newer_database(engine: Engine) -> None:
    """`error[database_newer]` (the engine disposed) for a database a newer talktime
    migrated; one that does not answer now is left to the command, which reports it."""
    import sqlalchemy as sa

    try:
        revisions(engine)
    except sa.exc.OperationalError:
        return
    except typer.Exit:
        engine.dispose()
        raise
