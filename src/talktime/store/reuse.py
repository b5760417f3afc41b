"""Write transactions on reused connections: a short stack of idle SQLAlchemy connections.

Checking a connection out of SQLAlchemy's pool and building a `Connection` around it costs
about 35 µs per transaction on SQLite, more than the BEGIN and COMMIT themselves; the wallet's
one-charge transactions pay it every time. A `ConnectionStack` keeps up to a few idle
connections (outside any transaction) and begins the next transaction on one of them. A
connection whose transaction failed is closed (returned to the pool) rather than reused.

Only SQLite uses the stack: a PostgreSQL connection left idle may be dropped by the server, and
the pool's pre-ping is what notices that; there the round trips dominate anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


class ConnectionStack:
    """Idle connections of one engine, reused LIFO for write transactions."""

    def __init__(self, engine: sa.Engine, keep: int = 4) -> None:
        self.engine = engine
        self.keep = keep if engine.dialect.name == "sqlite" else 0
        self._idle: list[sa.Connection] = []

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection inside a new transaction, committed when the block ends and rolled
        back if it raises (like `Engine.begin`)."""
        if not self.keep:
            with self.engine.begin() as conn:
                yield conn
            return
        try:
            conn = self._idle.pop()  # atomic under the GIL: threads never share one
        except IndexError:
            conn = self.engine.connect()
        try:
            with conn.begin():
                yield conn
        except BaseException:
            conn.close()
            raise
        if conn.invalidated or len(self._idle) >= self.keep:
            conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        """Return every idle connection to the pool."""
        while self._idle:
            self._idle.pop().close()
