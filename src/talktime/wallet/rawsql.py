"""Hot-path execution: Core statements compiled once per dialect and run on the DB-API cursor
of the transaction's connection.

The wallet's per-charge statements are fixed; skipping SQLAlchemy's per-call execution layer
(compile-cache lookup, result proxies, events) roughly halves a durable charge's CPU time.
Statements are still written with SQLAlchemy Core, so they stay dialect-correct, and driver
errors are raised as SQLAlchemy's (`sa.exc.IntegrityError`, ...), as `Connection.execute` would.
"""

from __future__ import annotations

import contextlib
import operator
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

Prepared = tuple[str, tuple[str, ...] | None, dict[str, Any], Callable[..., Any] | None]


class RawStatement:
    """A Core statement compiled once per dialect, executed on the raw DB-API cursor."""

    def __init__(self, statement: sa.ClauseElement, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, Prepared] = {}

    def _prepare(self, conn: sa.Connection) -> Prepared:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.column_keys)
            order = getattr(compiled, "positiontup", None)
            positional = tuple(order or ()) if dialect.positional else None
            make_row: Callable[..., Any] | None = None
            if isinstance(self.statement, sa.Select):
                names = [str(c.key) for c in self.statement.selected_columns]
                make_row = _row_type(names)
            # Literal values in the statement (e.g. `remaining > 0`) are binds with defaults.
            defaults = dict(compiled.params)
            found = (compiled.string, positional, defaults, make_row)
            self._compiled[dialect.name] = found
        return found

    @staticmethod
    def _params(prepared: Prepared, params: Mapping[str, Any]) -> Any:
        _, positional, defaults, _ = prepared
        merged = {**defaults, **params}
        return tuple(merged[name] for name in positional) if positional is not None else merged

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run a SELECT; rows are named tuples with the statement's column keys."""
        prepared = self._prepare(conn)
        make_row = prepared[3]
        assert make_row is not None, "rows() is for SELECT statements"
        cursor = conn.connection.cursor()
        try:
            with driver_errors(conn, prepared[0]):
                cursor.execute(prepared[0], self._params(prepared, params))
                found = cursor.fetchall()
            return [make_row(*r) for r in found]
        finally:
            cursor.close()

    def rows_after(
        self, conn: sa.Connection, first: RawStatement, params: Mapping[str, Any]
    ) -> list[Any]:
        """Run ``first`` (e.g. a row lock), then this SELECT as a separate statement, pipelined
        into one round trip on PostgreSQL; returns this SELECT's rows."""
        prepared = self._prepare(conn)
        make_row = prepared[3]
        assert make_row is not None, "rows_after() is for SELECT statements"
        before = first._prepare(conn)
        lock_cursor = conn.connection.cursor()
        cursor = conn.connection.cursor()
        try:
            with pipeline(conn), driver_errors(conn, prepared[0]):
                lock_cursor.execute(before[0], first._params(before, params))
                cursor.execute(prepared[0], self._params(prepared, params))
            with driver_errors(conn, prepared[0]):
                found = cursor.fetchall()
            return [make_row(*r) for r in found]
        finally:
            lock_cursor.close()
            cursor.close()

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> int:
        """Run one write; returns the row count."""
        prepared = self._prepare(conn)
        cursor = conn.connection.cursor()
        try:
            with driver_errors(conn, prepared[0]):
                cursor.execute(prepared[0], self._params(prepared, params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def executemany(self, conn: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run one write for each parameter set."""
        prepared = self._prepare(conn)
        cursor = conn.connection.cursor()
        try:
            with driver_errors(conn, prepared[0]):
                cursor.executemany(prepared[0], [self._params(prepared, r) for r in rows])
        finally:
            cursor.close()

    def executemany_rows(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Run one write for each row of values given in ``column_keys`` order (no dict per
        row: the hot path builds these tuples directly)."""
        assert self.column_keys is not None, "executemany_rows needs column_keys"
        prepared = self._prepare(conn)
        positional = prepared[1]
        params: Any
        if positional is None:
            names = self.column_keys
            params = [dict(zip(names, row, strict=True)) for row in rows]
        elif list(positional) == self.column_keys:
            params = rows
        else:
            pick = operator.itemgetter(*(self.column_keys.index(n) for n in positional))
            params = [pick(row) for row in rows]
        cursor = conn.connection.cursor()
        try:
            with driver_errors(conn, prepared[0]):
                cursor.executemany(prepared[0], params)
        finally:
            cursor.close()


@contextlib.contextmanager
def driver_errors(conn: sa.Connection, statement: str) -> Iterator[None]:
    """Raise a driver error inside the block as SQLAlchemy's wrapped exception (invalidating
    the connection when the error dropped it)."""
    dialect = conn.dialect
    base = dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        dbapi_connection = conn.connection.dbapi_connection
        disconnect = dialect.is_disconnect(exc, dbapi_connection, None)
        if disconnect:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            statement, None, exc, base, dialect=dialect, connection_invalidated=disconnect
        ) from exc


@contextlib.contextmanager
def pipeline(conn: sa.Connection) -> Iterator[None]:
    """psycopg's pipeline mode on PostgreSQL (statements sent without waiting for each
    result; errors still raise at the end of the block, as SQLAlchemy exceptions); a no-op
    elsewhere."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with driver_errors(conn, "(pipeline)"), conn.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
        yield


def _row_type(names: list[str]) -> Callable[..., Any]:
    return namedtuple("Row", names)
