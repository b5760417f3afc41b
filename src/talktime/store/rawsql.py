"""Hot-path execution: Core statements compiled once per dialect and run on the DB-API cursor
of the transaction's connection.

Used where a statement runs on every request: the wallet's charge, the API's key lookup and
idempotency record, the send-SMS path and the group committer's savepoints. The wallet's
per-charge statements are fixed; skipping SQLAlchemy's per-call execution layer
(compile-cache lookup, result proxies, events) roughly halves a durable charge's CPU time.
Statements are still written with SQLAlchemy Core, so they stay dialect-correct, and driver
errors are raised as SQLAlchemy's (`sa.exc.IntegrityError`, ...), as `Connection.execute` would.
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

Prepared = tuple[str, tuple[str, ...] | None, dict[str, Any], Callable[..., Any] | None]


class RawStatement:
    """A Core statement compiled once per dialect, executed on the raw DB-API cursor."""

    def __init__(
        self,
        statement: sa.ClauseElement,
        column_keys: Sequence[str] | None = None,
        row_keys: Sequence[str] | None = None,
    ):
        """``column_keys``: the columns an INSERT sets; ``row_keys``: the order of the values
        in the rows given to `executemany_rows` (default: ``column_keys``)."""
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        keys = row_keys if row_keys is not None else column_keys
        self.row_keys = list(keys) if keys is not None else None
        self._compiled: dict[str, Prepared] = {}
        self._converters: dict[str, Callable[[list[tuple[Any, ...]]], Any]] = {}

    def _prepare(self, conn: sa.Connection) -> Prepared:
        return self._prepare_for(conn.dialect)

    def _prepare_for(self, dialect: sa.engine.Dialect) -> Prepared:
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

    def for_driver(
        self, dialect: sa.engine.Dialect, params: Mapping[str, Any]
    ) -> tuple[str, Any, Callable[..., Any] | None]:
        """The SQL for ``dialect``, ``params`` in its driver's form and the row maker (named
        tuples, for a SELECT): to run the statement on a driver connection of one's own."""
        prepared = self._prepare_for(dialect)
        return prepared[0], self._params(prepared, params), prepared[3]

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run a SELECT; rows are named tuples with the statement's column keys."""
        return self.start(conn, params).rows()

    def start(self, conn: sa.Connection, params: Mapping[str, Any]) -> PendingRows:
        """Send a SELECT now and read its rows later (`PendingRows.rows`). Inside a PostgreSQL
        pipeline the result then arrives with the round trip of whatever is read next;
        elsewhere the rows are read at once."""
        prepared = self._prepare(conn)
        make_row = prepared[3]
        assert make_row is not None, "rows() and start() are for SELECT statements"
        return _start(conn, prepared[0], self._params(prepared, params), make_row)

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
            with pipeline(conn), driver_errors(conn, prepared[0]), begin_in_pipeline(conn):
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

    def executemany_rows(
        self, conn: sa.Connection, rows: list[tuple[Any, ...]], cursor: Any = None
    ) -> None:
        """Run one write for each row of values given in ``row_keys`` order (no dict per row:
        the hot path builds these tuples directly), on ``cursor`` if given."""
        prepared = self._prepare(conn)
        convert = self._converters.get(conn.dialect.name)
        if convert is None:
            convert = self._converters[conn.dialect.name] = self._converter(prepared[1])
        own = cursor is None
        if own:
            cursor = conn.connection.cursor()
        try:
            with driver_errors(conn, prepared[0]):
                cursor.executemany(prepared[0], convert(rows))
        finally:
            if own:
                cursor.close()

    def _converter(
        self, positional: tuple[str, ...] | None
    ) -> Callable[[list[tuple[Any, ...]]], Any]:
        """How rows in ``row_keys`` order become the driver's parameters."""
        names = self.row_keys
        assert names is not None, "executemany_rows needs row_keys (or column_keys)"
        if positional is None:
            return lambda rows: [dict(zip(names, row, strict=True)) for row in rows]
        if list(positional) == names:
            return lambda rows: rows
        pick = operator.itemgetter(*(names.index(n) for n in positional))
        return lambda rows: [pick(row) for row in rows]


def start_text(
    conn: sa.Connection, statement: str, params: Any, names: Sequence[str]
) -> PendingRows:
    """`RawStatement.start` for a SELECT written out for the connection's dialect (driver
    parameters as is); its rows are named tuples with ``names``."""
    return _start(conn, statement, params, _row_type(list(names)))


def _start(
    conn: sa.Connection, statement: str, params: Any, make_row: Callable[..., Any]
) -> PendingRows:
    cursor = conn.connection.cursor()
    try:
        with driver_errors(conn, statement):
            cursor.execute(statement, params)
    except BaseException:
        cursor.close()
        raise
    pending = PendingRows(conn, statement, make_row, cursor)
    if not _in_pipeline(conn):
        pending.fetch()  # outside a pipeline read at once: no statement is left open
    return pending


def pairs_source(dialect: str) -> str:
    """A FROM item ``j(a, k)`` of (account id, key) pairs given as `pairs_params`, to join a
    table keyed by both: one index probe per pair."""
    if dialect == "postgresql":
        return "unnest(%s::bigint[], %s::text[]) AS j(a, k)"
    # CROSS JOIN: SQLite then probes the (account_id, key) index once per pair.
    return (
        "(SELECT json_extract(value, '$[0]') AS a, json_extract(value, '$[1]') AS k "
        "FROM json_each(?)) AS j CROSS"
    )


def pairs_params(dialect: str, pairs: Sequence[tuple[int, str]]) -> tuple[Any, ...]:
    """The parameters of `pairs_source`: two arrays on PostgreSQL, one JSON text on SQLite."""
    if dialect == "postgresql":
        return ([a for a, _ in pairs], [k for _, k in pairs])
    return (json.dumps(list(pairs)),)


class PendingRows:
    """The result of a SELECT sent by `RawStatement.start`, read with `rows`."""

    __slots__ = ("conn", "cursor", "found", "make_row", "statement")

    def __init__(
        self, conn: sa.Connection, statement: str, make_row: Callable[..., Any], cursor: Any
    ) -> None:
        self.conn = conn
        self.statement = statement
        self.make_row = make_row
        self.cursor = cursor
        self.found: list[Any] | None = None

    def fetch(self) -> None:
        """Read the result from the driver (on PostgreSQL in a pipeline: wait for it)."""
        try:
            with driver_errors(self.conn, self.statement):
                self.found = self.cursor.fetchall()
        finally:
            self.cursor.close()

    def finish(self) -> None:
        """Read the result if nobody has (its cursor is closed then); for a result that
        turned out not to be needed."""
        if self.found is None:
            self.fetch()

    def rows(self) -> list[Any]:
        """The rows, named tuples with the statement's column keys."""
        if self.found is None:
            self.fetch()
        assert self.found is not None
        return [self.make_row(*r) for r in self.found]


class driver_errors:  # noqa: N801 - used like a function: `with driver_errors(conn, sql):`
    """Raise a driver error inside the block as SQLAlchemy's wrapped exception (invalidating
    the connection when the error dropped it). A class, not a generator: it wraps every
    hot-path statement."""

    __slots__ = ("conn", "statement")

    def __init__(self, conn: sa.Connection, statement: str) -> None:
        self.conn = conn
        self.statement = statement

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> None:
        if exc is None:
            return
        dialect = self.conn.dialect
        base = dialect.loaded_dbapi.Error
        if not isinstance(exc, base):
            return
        disconnect = dialect.is_disconnect(exc, self.conn.connection.dbapi_connection, None)
        if disconnect:
            self.conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            self.statement, None, exc, base, dialect=dialect, connection_invalidated=disconnect
        ) from exc


def pipeline(conn: sa.Connection) -> contextlib.AbstractContextManager[Any]:
    """psycopg's pipeline mode on PostgreSQL (statements sent without waiting for each
    result; errors still raise at the end of the block, as SQLAlchemy exceptions); a no-op
    elsewhere.

    Inside a pipeline that is already open the block joins it instead of nesting one (psycopg
    ends a nested block with a Sync, a round trip of its own): its statements go out with the
    open pipeline's next read or its end, which is also when their errors are raised."""
    if conn.dialect.name != "postgresql" or _in_pipeline(conn):
        return _NO_PIPELINE
    return _pipelined(conn)


def _in_pipeline(conn: sa.Connection) -> bool:
    """Whether the connection is in PostgreSQL pipeline mode (libpq's pipeline status)."""
    pgconn = getattr(conn.connection.dbapi_connection, "pgconn", None)
    return pgconn is not None and bool(pgconn.pipeline_status)


_NO_PIPELINE = contextlib.nullcontext()


@contextlib.contextmanager
def _pipelined(conn: sa.Connection) -> Iterator[None]:
    with driver_errors(conn, "(pipeline)"), conn.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
        yield


@contextlib.contextmanager
def begin_in_pipeline(conn: sa.Connection) -> Iterator[None]:
    """Inside a pipeline on a connection with no transaction open yet: send BEGIN as the
    pipeline's first statement, so it shares the round trip of the statements that follow.

    Left to itself psycopg sends its implicit BEGIN with a Sync of its own and waits for it: a
    round trip per transaction. Here psycopg's implicit BEGIN is switched off for the block
    (its autocommit flag, without the setter's server round trip) and the BEGIN is queued like
    any statement; after the block the transaction is open and psycopg tracks it as its own
    (it reads the state from libpq), so SQLAlchemy's commit and rollback work unchanged.
    Elsewhere (SQLite, a transaction already open, an unknown psycopg) it does nothing.
    """
    dbapi = conn.connection.dbapi_connection
    pgconn = getattr(dbapi, "pgconn", None)
    if (
        pgconn is None
        or getattr(dbapi, "_autocommit", True) is not False
        or pgconn.transaction_status != _PG_IDLE
    ):
        yield
        return
    dbapi._autocommit = True  # type: ignore[union-attr]
    try:
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN")
        finally:
            cursor.close()
        yield
    finally:
        dbapi._autocommit = False  # type: ignore[union-attr]


_PG_IDLE = 0
"""libpq's PQTRANS_IDLE (psycopg.pq.TransactionStatus.IDLE): no transaction open."""


def commit_in_pipeline(conn: sa.Connection) -> None:
    """Queue COMMIT in the open pipeline as a plain statement, so it goes out with the writes
    and the pipeline's closing Sync is its only wait (psycopg's `commit()` in a pipeline adds
    a Sync and a round trip of its own). SQLAlchemy's commit then finds no transaction open
    and sends nothing."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("COMMIT")
    finally:
        cursor.close()


@functools.cache
def _row_type_of(names: tuple[str, ...]) -> Callable[..., Any]:
    return namedtuple("Row", names)


def _row_type(names: list[str]) -> Callable[..., Any]:
    return _row_type_of(tuple(names))
