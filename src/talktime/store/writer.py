"""One SQLite writer at a time, queued in the kernel instead of SQLite's busy handler.

SQLite lets one transaction write at a time; a `BEGIN IMMEDIATE` that finds the lock taken
sleeps in SQLite's busy handler (1, 2, 5 ... 100 ms) and tries again. While the send path's
group-commit writers hand the lock to each other, such a retry almost never finds it free: a
settings write or a cycle step waited up to 1-3 s, and while the cycle held the lock the
writers waited in that handler too (sends stalled for seconds after a month boundary). Every
writer therefore takes the *writer turn* first: a lock for the threads of this process, then an
exclusive `flock` on `<database>-writer.lock` shared by the processes. The turn is reentrant
within a thread (a write made while the thread already holds it goes straight on).
PostgreSQL locks rows itself: no turn there, nor on an in-memory SQLite database.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import sqlalchemy as sa

from talktime.store.engine import is_sqlite_file


class _SqliteWriterTurn:
    """The turn of one engine: a reentrant thread lock, then (outermost only) the `flock`."""

    def __init__(self, engine: sa.Engine) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0  # guarded by the thread lock
        database = engine.url.database
        self._path = f"{database}-writer.lock" if is_sqlite_file(engine) else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._path is None or self._depth > 0:
            self._depth += 1
            return
        try:
            if self._fd is None:
                try:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                except OSError:
                    # no lock file beside the database (its directory is gone or read-only):
                    # go on without the file lock, and let SQLite say what is wrong with the
                    # database itself ("unable to open database file", an outage the callers
                    # handle) instead of failing here with an error they do not know
                    self._depth = 1
                    return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth = 1

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


_SQLITE_WRITERS: weakref.WeakKeyDictionary[sa.Engine, _SqliteWriterTurn] = (
    weakref.WeakKeyDictionary()
)
_GUARD = threading.Lock()


def writer_turn(engine: sa.Engine) -> AbstractContextManager[object]:
    """On SQLite, one writing transaction at a time (see the module docstring); nothing on
    PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _GUARD:
        turn = _SQLITE_WRITERS.get(engine)
        if turn is None:
            turn = _SQLITE_WRITERS[engine] = _SqliteWriterTurn(engine)
    return turn


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()` in the writer turn: a connection in a new transaction, committed
    when the block ends (rolled back if it raises), then the turn is given up."""
    with writer_turn(engine), engine.begin() as conn:
        yield conn
