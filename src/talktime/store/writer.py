"""One SQLite writer at a time, queued in the kernel instead of SQLite's busy handler.

SQLite lets one transaction write at a time; a `BEGIN IMMEDIATE` that finds the lock taken
sleeps in SQLite's busy handler (1, 2, 5 ... 100 ms) and tries again. While the send path's
group-commit writers hand the lock to each other, such a retry almost never finds it free: a
settings write or a cycle step waited up to 1-3 s, and while the cycle held the lock the
writers waited in that handler too (sends stalled for seconds after a month boundary). Every
writer therefore takes the *writer turn* first: a lock for the threads of this process, then an
exclusive `flock` on `<database>-writer.lock` shared by the processes. The turn belongs to the
database file, whatever engine writes to it, and is reentrant within a thread (a write made
while the thread already holds it goes straight on).

Waiting for the turn is bounded by the engine's SQLite busy timeout, as waiting for SQLite's
lock was: past it the writer gets the error SQLite gives ("database is locked", answered 503
by the service), so a holder that hangs (a stopped process, or a transaction of another program
that keeps SQLite's lock while the turn's holder retries) fails the waiters after that long
instead of queueing them behind each other for ever. `flock` itself cannot time out: a wait
for another process's turn runs in a waiter thread of the file's own (`_FlockWaiter`) that the
caller can stop waiting for.
PostgreSQL locks rows itself: no turn there. An in-memory SQLite database takes the thread
lock only (no file to lock; its one connection must not interleave transactions anyway).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import sqlalchemy as sa

from talktime.store.engine import SQLITE_BUSY, is_sqlite_file, sqlite_busy_timeout

log = logging.getLogger("talktime.store")


def turn_refused(waited: float) -> sa.exc.OperationalError:
    """The error a writer gets when the turn did not come within its wait: SQLite's own
    "database is locked" (SQLITE_BUSY), so every caller treats it as it treats SQLite's."""
    orig = sqlite3.OperationalError(
        f"database is locked (the SQLite writer turn did not come within {waited:g} s)"
    )
    orig.sqlite_errorcode = SQLITE_BUSY
    orig.sqlite_errorname = "SQLITE_BUSY"
    return sa.exc.OperationalError("BEGIN (the SQLite writer turn)", None, orig)


def open_lock_file(path: str) -> int:
    """A descriptor of the lock file, created if missing: read-only is enough for `flock`,
    and 0o666 lets the umask decide who else may open it."""
    return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)


class _FlockWaiter:
    """Waits for another process's turn in a thread, on a descriptor of its own, so that the
    caller can stop waiting (`flock` has no timeout). One per file and process, started on
    the first contended turn and kept: the process's writers take turns on it, one at a time
    (they hold the thread lock while they wait). If its caller stopped waiting, the lock it
    gets later is given back at once, unless a later caller asked for it meanwhile."""

    def __init__(self, path: str) -> None:
        self._fd = open_lock_file(path)
        self._state = threading.Condition(threading.Lock())
        self._wanted = False
        self._got = False
        self._error: OSError | None = None
        name = f"talktime-writer-turn {path}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._state:
                while not self._wanted:
                    self._state.wait()
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError as exc:  # not expected of a descriptor we opened; told to the caller
                with self._state:
                    self._error = exc
                    self._wanted = False
                    self._state.notify_all()
                continue
            with self._state:
                if self._wanted:
                    self._got = True
                    self._wanted = False
                    self._state.notify_all()
                else:  # its caller gave up waiting: give the lock back to the other processes
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def take(self, timeout: float) -> int | None:
        """The descriptor holding the lock (`fcntl.LOCK_UN` on it gives it up), or None if
        the lock did not come within ``timeout`` seconds."""
        with self._state:
            self._error = None
            self._wanted = True
            self._state.notify_all()
            try:
                self._state.wait_for(lambda: self._got or self._error is not None, timeout)
            except BaseException:  # interrupted (KeyboardInterrupt): nobody will hold it
                self._wanted = False
                if self._got:
                    self._got = False
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                raise
            if self._got:
                self._got = False
                return self._fd
            self._wanted = False
            if self._error is not None:
                raise self._error
            return None

    def forget_in_child(self) -> None:
        """In a forked child (where its thread is not): close the copied descriptor, which
        leaves the parent's lock as it is."""
        os.close(self._fd)


class _SqliteWriterTurn:
    """The turn of one database file in this process: a reentrant thread lock, then
    (outermost only) the `flock` on its lock file."""

    def __init__(self, lock_path: str | None) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0  # guarded by the thread lock, as every field below
        self._path = lock_path
        self._fd: int | None = None
        self._held: int | None = None  # the descriptor holding the file lock
        self._waiter: _FlockWaiter | None = None
        self._warned = False

    def enter(self, timeout: float) -> None:
        """Take the turn within ``timeout`` seconds, or raise `turn_refused`."""
        deadline = time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=timeout):
            raise turn_refused(timeout)
        if self._path is None or self._depth > 0:
            self._depth += 1
            return
        try:
            self._held = self._lock_file(max(0.0, deadline - time.monotonic()), timeout)
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth = 1

    def _lock_file(self, left: float, timeout: float) -> int | None:
        """The descriptor now holding the file lock: the turn's own when the lock is free,
        else the waiter's, once the other process gives it up within ``left`` seconds
        (`turn_refused` if not). None when the lock file cannot be opened."""
        if self._fd is None:
            self._fd = self._open()
            if self._fd is None:
                return None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self._fd
        except BlockingIOError:
            pass
        except OSError as exc:  # no locks on this file system (ENOLCK): go on without
            self._cannot_lock(exc)
            return None
        try:
            if self._waiter is None:
                assert self._path is not None
                self._waiter = _FlockWaiter(self._path)
            held = self._waiter.take(left)
        except OSError as exc:  # the directory went away since, or the lock failed
            self._cannot_lock(exc)
            return None
        if held is None:
            raise turn_refused(timeout)
        return held

    def _open(self) -> int | None:
        """The lock file (`open_lock_file`; a CLI run as root must not lock the server's user
        out of it). None when it cannot be opened (the database's directory is gone or not
        ours): the write goes on without the file lock, and SQLite says what is wrong with the
        database itself ("unable to open database file", an outage the callers handle)."""
        assert self._path is not None
        try:
            return open_lock_file(self._path)
        except OSError as exc:
            self._cannot_lock(exc)
            return None

    def _cannot_lock(self, exc: OSError) -> None:
        """Warned of once: the lock file cannot be opened or locked, and the writes go on
        without it. Not when the directory is missing: no database either, and the callers
        report that outage."""
        if exc.errno != errno.ENOENT and not self._warned:
            self._warned = True
            log.warning(
                "cannot use the SQLite writer lock %s (%s): writers of other processes "
                "may wait in SQLite's busy handler",
                self._path,
                exc.strerror,
            )

    def forget_in_child(self) -> None:
        """In a forked child: close the copied descriptors (the parent's lock stays as it
        is, as closing a copy leaves it) and hold nothing, so that a turn the child was in
        when it forked gives nothing up when it leaves."""
        if self._fd is not None:
            os.close(self._fd)
        if self._waiter is not None:
            self._waiter.forget_in_child()  # the held descriptor is one of these two
        self._fd = self._held = self._waiter = None

    def leave(self) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._held is not None:
                held, self._held = self._held, None
                fcntl.flock(held, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class _Turn:
    """One use of a file's turn, waiting at most ``timeout`` seconds for it."""

    __slots__ = ("_timeout", "_turn")

    def __init__(self, turn: _SqliteWriterTurn, timeout: float) -> None:
        self._turn = turn
        self._timeout = timeout

    def __enter__(self) -> None:
        self._turn.enter(self._timeout)

    def __exit__(self, *exc: object) -> None:
        self._turn.leave()


_FILE_TURNS: dict[str, _SqliteWriterTurn] = {}
"""The turn of each database file, whatever engine writes to it: two engines on one file in
one process share it (a write through a second engine inside a write of the first would
otherwise wait on its own `flock` for ever), and one descriptor per file is kept, not one per
engine."""
_MEMORY_TURNS: weakref.WeakKeyDictionary[sa.Engine, _SqliteWriterTurn] = weakref.WeakKeyDictionary()
"""In-memory databases: one turn per engine (each engine is its own database), a thread lock
only."""
_GUARD = threading.Lock()


def _forget_turns_in_child() -> None:
    """A forked child starts with no turns: the parent's descriptors share its locks (a child
    flocking one would think it held a turn its parent holds), its thread locks may be held by
    threads the child does not have, and its waiter threads are not in the child."""
    global _GUARD
    _GUARD = threading.Lock()
    for turn in _FILE_TURNS.values():
        turn.forget_in_child()
    _FILE_TURNS.clear()
    _MEMORY_TURNS.clear()


os.register_at_fork(after_in_child=_forget_turns_in_child)


def writer_turn(engine: sa.Engine) -> AbstractContextManager[object]:
    """On SQLite, one writing transaction at a time, waited for at most the engine's busy
    timeout (see the module docstring); nothing on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _GUARD:
        if not is_sqlite_file(engine):
            turn = _MEMORY_TURNS.get(engine)
            if turn is None:
                turn = _MEMORY_TURNS[engine] = _SqliteWriterTurn(None)
        else:
            path = os.path.realpath(str(engine.url.database))
            turn = _FILE_TURNS.get(path)
            if turn is None:
                turn = _FILE_TURNS[path] = _SqliteWriterTurn(f"{path}-writer.lock")
    return _Turn(turn, sqlite_busy_timeout(engine))


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()` in the writer turn: a connection in a new transaction, committed
    when the block ends (rolled back if it raises), then the turn is given up."""
    with writer_turn(engine), engine.begin() as conn:
        yield conn
