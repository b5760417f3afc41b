"""One SQLite writer at a time, queued in the kernel instead of SQLite's busy handler.

SQLite lets one transaction write at a time; a `BEGIN IMMEDIATE` that finds the lock taken
sleeps in SQLite's busy handler (1, 2, 5 ... 100 ms) and tries again. While the send path's
group-commit writers hand the lock to each other, such a retry almost never finds it free: a
settings write or a cycle step waited up to 1-3 s, and while the cycle held the lock the
writers waited in that handler too (sends stalled for seconds after a month boundary). Every
writer therefore takes the *writer turn* first: a lock for the threads of this process, then an
exclusive `flock` on `<database>-writer.lock` shared by the processes. The turn belongs to the
database file, whatever engine writes to it, and is reentrant within a thread (a write made
while the thread already holds it goes straight on). Waiting for it has no timeout: it is only
ever held around database work, never around a network call.
PostgreSQL locks rows itself: no turn there. An in-memory SQLite database takes the thread
lock only (no file to lock; its one connection must not interleave transactions anyway).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import sqlalchemy as sa

from talktime.store.engine import is_sqlite_file

log = logging.getLogger("talktime.store")


class _SqliteWriterTurn:
    """The turn of one database file in this process: a reentrant thread lock, then
    (outermost only) the `flock` on its lock file."""

    def __init__(self, lock_path: str | None) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0  # guarded by the thread lock
        self._path = lock_path
        self._fd: int | None = None
        self._warned = False

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._path is None or self._depth > 0:
            self._depth += 1
            return
        try:
            if self._fd is None:
                self._fd = self._open()
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth = 1

    def _open(self) -> int | None:
        """The lock file, created if missing: read-only is enough for `flock`, and 0o666 lets
        the umask decide who else may open it (a CLI run as root must not lock the server's
        user out). None when it cannot be opened (the database's directory is gone or not
        ours): the write goes on without the file lock, and SQLite says what is wrong with the
        database itself ("unable to open database file", an outage the callers handle)."""
        assert self._path is not None
        try:
            return os.open(self._path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            # no directory: no database either, and the callers report that outage
            if exc.errno != errno.ENOENT and not self._warned:
                self._warned = True
                log.warning(
                    "cannot open the SQLite writer lock %s (%s): writers of other processes "
                    "may wait in SQLite's busy handler",
                    self._path,
                    exc.strerror,
                )
            return None

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


_FILE_TURNS: dict[str, _SqliteWriterTurn] = {}
"""The turn of each database file, whatever engine writes to it: two engines on one file in
one process share it (a write through a second engine inside a write of the first would
otherwise wait on its own `flock` for ever), and one descriptor per file is kept, not one per
engine."""
_MEMORY_TURNS: weakref.WeakKeyDictionary[sa.Engine, _SqliteWriterTurn] = weakref.WeakKeyDictionary()
"""In-memory databases: one turn per engine (each engine is its own database), a thread lock
only."""
_GUARD = threading.Lock()


def writer_turn(engine: sa.Engine) -> AbstractContextManager[object]:
    """On SQLite, one writing transaction at a time (see the module docstring); nothing on
    PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _GUARD:
        if not is_sqlite_file(engine):
            turn = _MEMORY_TURNS.get(engine)
            if turn is None:
                turn = _MEMORY_TURNS[engine] = _SqliteWriterTurn(None)
            return turn
        path = os.path.realpath(str(engine.url.database))
        turn = _FILE_TURNS.get(path)
        if turn is None:
            turn = _FILE_TURNS[path] = _SqliteWriterTurn(f"{path}-writer.lock")
        return turn


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()` in the writer turn: a connection in a new transaction, committed
    when the block ends (rolled back if it raises), then the turn is given up."""
    with writer_turn(engine), engine.begin() as conn:
        yield conn
