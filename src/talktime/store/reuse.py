"""Write transactions on reused connections: a short stack of idle SQLAlchemy connections.

Checking a connection out of SQLAlchemy's pool and building a `Connection` around it costs
about 35 µs per transaction on SQLite, and on PostgreSQL the pool's pre-ping adds a round trip;
the wallet's one-charge transactions paid that every time. A `ConnectionStack` keeps up to a
few idle connections (outside any transaction) and begins the next transaction on one of them.
A connection whose transaction failed is closed (returned to the pool) rather than reused.

A PostgreSQL connection is reused only while it has been idle less than ``max_idle`` seconds
(the pool's pre-ping checks older ones); one that the server dropped anyway fails with an
error whose `connection_invalidated` is true, which callers may retry (`is_disconnect`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


class ConnectionStack:
    """Idle connections of one engine, reused LIFO for write transactions."""

    def __init__(self, engine: sa.Engine, keep: int = 4, max_idle: float = 5.0) -> None:
        self.engine = engine
        self.keep = keep
        self.max_idle = None if engine.dialect.name == "sqlite" else max_idle
        self._idle: list[tuple[sa.Connection, float]] = []

    def _take(self) -> sa.Connection:
        while True:
            try:
                conn, since = self._idle.pop()  # atomic under the GIL: never shared
            except IndexError:
                return self.engine.connect()
            if self.max_idle is None or time.monotonic() - since < self.max_idle:
                return conn
            conn.close()  # too long idle: the pool pre-pings it on the next checkout

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection inside a new transaction, committed when the block ends and rolled
        back if it raises (like `Engine.begin`)."""
        conn = self._take()
        try:
            with conn.begin():
                yield conn
        except BaseException:
            conn.close()
            raise
        if conn.invalidated or len(self._idle) >= self.keep:
            conn.close()
        else:
            self._idle.append((conn, time.monotonic()))

    def close(self) -> None:
        """Return every idle connection to the pool."""
        while self._idle:
            self._idle.pop()[0].close()


LOST_RACE_STATES = ("40P01", "40001")
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction was chosen to lose a
race with another one, and running it again is how it goes on."""


def lost_race(exc: BaseException) -> bool:
    """True for an error PostgreSQL raised to end a deadlock or a serialization failure."""
    return isinstance(exc, sa.exc.DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in LOST_RACE_STATES
    )


def is_disconnect(exc: BaseException) -> bool:
    """True for an error that dropped the connection (the transaction did not commit unless
    the error came from the COMMIT itself; an idempotent retry is safe either way)."""
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)
