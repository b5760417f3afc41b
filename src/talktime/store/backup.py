"""Backing up and restoring a SQLite database with SQLite's online backup API.

A copy of the file taken with `cp` while talktime runs can miss the commits still in the
`-wal` file, and a backup copied over the file lets SQLite replay a crashed process's
leftover `-wal` onto it (the restored file then holds the old commits, or is damaged). The
backup API does neither: it copies a consistent snapshot page by page, and a restore is one
write transaction into the live file, through its own write-ahead log.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import ClassVar

from talktime.errors import TalktimeError
from talktime.store.migrate import head_revision, newer_sentence, newer_than_package


class BackupError(TalktimeError):
    """A backup or restore that cannot be done; nothing was changed."""

    code: ClassVar[str] = "backup_refused"
    status: ClassVar[int] = 422
    title: ClassVar[str] = "Backup or restore refused"


def backup(database: str, target: str) -> str | None:
    """Copy the SQLite ``database`` (in use or not) to the new file ``target``; returns the
    copy's migration revision. Refuses a ``target`` that exists: a backup never overwrites."""
    if os.path.exists(target):
        raise BackupError(f"{target} exists: a backup never overwrites a file; name a new one")
    if not os.path.isdir(os.path.dirname(os.path.abspath(target))):
        raise BackupError(f"there is no directory for {target}; create it first")
    with closing(_open_existing(database)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)  # one step: a snapshot of one moment
        return _revision(copy)


def restore(copy: str, database: str) -> str | None:
    """Replace the contents of the SQLite ``database`` with the backup ``copy`` (checked
    first: a whole SQLite file of talktime's, at a revision this version knows); returns the
    restored revision. A ``database`` file that does not exist yet is created (a restore on a
    new machine); its directory must exist."""
    if not os.path.isdir(os.path.dirname(os.path.abspath(database))):
        raise BackupError(f"there is no directory for {database}; create it first")
    with closing(_open_existing(copy, read_only=True)) as source:
        problems = [row[0] for row in source.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise BackupError(f"{copy} is damaged ({problems[0]}); nothing was restored")
        revision = _revision(source)
        if revision is None:
            raise BackupError(
                f"{copy} is not a talktime database (it has no migration revision); "
                "nothing was restored"
            )
        if newer_than_package(revision):
            sentence = newer_sentence(revision, head_revision())
            raise BackupError(f"{copy}: {sentence}; nothing was restored")
        # opening the live file first lets SQLite deal with a leftover -wal as it always does;
        # the copy then goes in as one write transaction, waiting up to 30 s for the lock
        with closing(sqlite3.connect(database, timeout=30)) as live:
            source.backup(live)
    return revision


def _open_existing(path: str, read_only: bool = False) -> sqlite3.Connection:
    """A connection to the SQLite file at ``path``, which must exist and be a database."""
    if not os.path.isfile(path):
        raise BackupError(f"there is no file at {path}")
    mode = "ro" if read_only else "rw"
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode={mode}", uri=True, timeout=30)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise BackupError(f"{path} is not a SQLite database ({exc})") from None
    return conn


def _revision(conn: sqlite3.Connection) -> str | None:
    """The file's Alembic revision, or None if it has none."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])
