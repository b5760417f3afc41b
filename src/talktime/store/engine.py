"""Engine factory: SQLite pragmas for durability and PostgreSQL pool settings in one place."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from talktime.config import Settings, get_settings

SQLITE_POOL_SIZE = 48
"""SQLite connections kept open per engine (cheap: no server, a file handle each)."""


def backend_name(url: str | URL) -> str:
    """`sqlite` or `postgresql` (the SQLAlchemy dialect name) for a database URL."""
    return make_url(url).get_backend_name()


def is_sqlite_file(engine: sa.Engine) -> bool:
    """True for a SQLite database in a file (not in memory): one that several connections,
    threads and processes share."""
    return engine.dialect.name == "sqlite" and not _in_memory(engine.url)


def missing_sqlite_file(url: str | URL) -> str | None:
    """The path of a SQLite file the URL names and that does not exist (SQLite would create
    it, empty, on the first connection), or None: the file exists, or the URL is not a SQLite
    file (PostgreSQL, in-memory, or a `file:` URI left to SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or _in_memory(parsed):
        return None
    database = parsed.database or ""
    if database.startswith("file:"):
        return None
    return None if os.path.exists(database) else database


def is_sqlite_memory(engine: sa.Engine) -> bool:
    """True for an in-memory SQLite database: one connection that every user of the engine
    shares (`StaticPool`)."""
    return engine.dialect.name == "sqlite" and _in_memory(engine.url)


_MEMORY_LOCKS: weakref.WeakKeyDictionary[sa.Engine, threading.RLock] = weakref.WeakKeyDictionary()
_MEMORY_LOCKS_GUARD = threading.Lock()


def memory_lock(engine: sa.Engine) -> threading.RLock | None:
    """The lock that serializes the users of an in-memory SQLite engine's one connection
    (the same lock for every wallet on the engine), or None for any other engine."""
    if not is_sqlite_memory(engine):
        return None
    with _MEMORY_LOCKS_GUARD:
        lock = _MEMORY_LOCKS.get(engine)
        if lock is None:
            lock = _MEMORY_LOCKS[engine] = threading.RLock()
        return lock


def _in_memory(url: URL) -> bool:
    """Whether a SQLite URL names an in-memory database: no file, `:memory:`, or a URI
    filename with `mode=memory` (in the filename or as a query parameter of the URL)."""
    database = url.database
    if not database or database == ":memory:":
        return True
    if url.query.get("mode") == "memory":
        return True
    return database.startswith("file:") and "mode=memory" in database


def is_sqlite_busy(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" (SQLITE_BUSY and its extended codes)."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    return (
        isinstance(orig, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF == SQLITE_BUSY
    )


_SQLITE_BUSY_MS: weakref.WeakKeyDictionary[sa.Engine, int] = weakref.WeakKeyDictionary()
"""The busy timeout each SQLite engine of `make_engine` sets on its connections."""


def sqlite_busy_timeout(engine: sa.Engine) -> float:
    """Seconds a writer on this SQLite engine waits for the database (its `PRAGMA
    busy_timeout`; the setting's default for an engine not made by `make_engine`)."""
    busy = _SQLITE_BUSY_MS.get(engine)
    if busy is None:
        busy = Settings.model_fields["sqlite_busy_timeout_ms"].default
    return busy / 1000


def make_engine(url: str | URL | None = None, settings: Settings | None = None) -> sa.Engine:
    """An engine for ``url`` (default: the configured database) with talktime's settings.

    SQLite: WAL journal, ``synchronous`` from settings (FULL by default, so a committed write
    survives a crash), foreign keys on, a busy timeout, and transactions that take the write lock
    at BEGIN (``BEGIN IMMEDIATE``, or the connection's ``sqlite_begin`` execution option) so
    read-then-write never fails half-way with SQLITE_BUSY.
    PostgreSQL: a bounded pool with pre-ping and recycling.
    Both: a failed statement's error message names its SQL but not its parameters
    (``hide_parameters``), so a logged 500 never carries a webhook secret, a key hash, a phone
    number or a name that was being written.
    """
    settings = settings or get_settings()
    url = make_url(url or settings.database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, settings)
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        # libpq waits for ever on a server that accepts the connection and never answers; a
        # `connect_timeout` written in the URL wins over the setting. In the URL, so that a
        # connection made from its connect arguments (`api.pgkeys`) has it too.
        if "connect_timeout" not in url.query:
            timeout = str(settings.pg_connect_timeout_seconds)
            url = url.update_query_dict({"connect_timeout": timeout})
        url = _with_lock_timeout(url, settings.pg_lock_timeout_ms)
        engine = sa.create_engine(
            url,
            hide_parameters=True,
            pool_size=settings.pg_pool_size,
            max_overflow=settings.pg_max_overflow,
            pool_timeout=settings.pg_pool_timeout_seconds,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
        sa.event.listen(engine, "after_cursor_execute", _sync_open_pipeline)
        return engine
    raise ValueError(f"unsupported database {backend!r}: use a sqlite:// or postgresql:// URL")


def _with_lock_timeout(url: URL, milliseconds: int) -> URL:
    """``url`` with the session setting ``lock_timeout`` in its libpq ``options`` (added to
    options already there; a ``lock_timeout`` written in them wins): a statement waiting for a
    lock another session holds fails after that long instead of holding its request for ever."""
    options = url.query.get("options", "")
    if isinstance(options, tuple):  # the option given twice: libpq reads the last one
        options = options[-1]
    if "lock_timeout" in options:
        return url
    extra = f"-c lock_timeout={milliseconds}"
    return url.update_query_dict({"options": f"{options} {extra}".strip()})


def _sync_open_pipeline(
    _conn: sa.Connection, cursor: Any, _statement: str, _params: Any, _context: Any, _many: bool
) -> None:
    """A statement SQLAlchemy executes inside a psycopg pipeline (`store.rawsql.pipeline`)
    gets its result before SQLAlchemy reads it: left queued, its cursor would have no
    description yet and SQLAlchemy would take a SELECT for a statement without rows. Ending
    a nested pipeline block sends a Sync and reads every result queued so far."""
    dbapi_conn = cursor.connection
    if dbapi_conn.pgconn.pipeline_status:
        with dbapi_conn.pipeline():
            pass


def _sqlite_engine(url: URL, settings: Settings) -> sa.Engine:
    memory = _in_memory(url)
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "isolation_level": None},
        "hide_parameters": True,
    }
    if memory:
        kwargs["poolclass"] = sa.StaticPool
    elif url.query.get("pool") == "null":
        kwargs["poolclass"] = NullPool
    else:
        # Keep a connection per concurrent request (Starlette's pool has 40 threads): the
        # default 5 plus overflow closed and reopened a connection (and its pragmas) for every
        # request beyond the fifth under load.
        kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    engine = sa.create_engine(url.difference_update_query(["pool"]), **kwargs)
    _drop_read_only_connections(engine)
    synchronous = settings.sqlite_synchronous
    busy = settings.sqlite_busy_timeout_ms
    _SQLITE_BUSY_MS[engine] = busy

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy)}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A read-only unit of work may ask for a deferred BEGIN:
        # conn.execution_options(sqlite_begin="DEFERRED").
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
            raise ValueError(f"sqlite_begin must be IMMEDIATE, DEFERRED or EXCLUSIVE, not {mode!r}")
        # Straight to the driver: this runs once per transaction, and SQLAlchemy's execution
        # layer (compile cache, events, result) would cost more than the BEGIN itself.
        statement = f"BEGIN {mode}"
        try:
            conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.Error as exc:  # raised as SQLAlchemy would (callers retry on these)
            # a connection that may not write can fail here (`PRAGMA query_only`); one SQLite
            # opened read-only fails at its first write instead: neither is kept
            lost = conn.dialect.is_disconnect(exc, None, None)  # type: ignore[arg-type]
            if lost:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                statement,
                None,
                exc,
                sqlite3.Error,
                dialect=conn.dialect,
                connection_invalidated=lost,
            ) from exc

    return engine


SQLITE_BUSY = 5
SQLITE_READONLY = 8
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26


def damaged_database(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying its file is not a database or is corrupt
    (SQLITE_NOTADB, SQLITE_CORRUPT): no retry changes that."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    return (
        isinstance(exc, sa.exc.DatabaseError)
        and code is not None
        and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    )


def _drop_read_only_connections(engine: sa.Engine) -> None:
    """Treat SQLite's "attempt to write a readonly database" (SQLITE_READONLY and its extended
    codes) as a lost connection: the connection, and every other one the pool opened before it,
    is closed instead of reused. SQLite opens a file it may not write read-only, without a
    word, and such a connection stayed read-only after the file was writable again: writes
    kept failing until a restart. The next connection opens the file afresh (and is read-only
    again, failing the same way, for as long as the file is)."""
    dialect = engine.dialect
    dialect_is_disconnect = dialect.is_disconnect

    def is_disconnect(exc: Any, connection: Any, cursor: Any) -> bool:
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == SQLITE_READONLY:
            return True
        return dialect_is_disconnect(exc, connection, cursor)

    dialect.is_disconnect = is_disconnect  # type: ignore[method-assign,assignment]


def read_snapshot(engine: sa.Engine) -> sa.Connection:
    """A connection whose queries all read one snapshot once a transaction begins: SQLite's
    deferred read transaction, PostgreSQL's REPEATABLE READ (under READ COMMITTED each query
    saw other commits, so a read of a database in use mixed states)."""
    conn = engine.connect().execution_options(sqlite_begin="DEFERRED")
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn
