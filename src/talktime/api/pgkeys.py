"""API-key lookups on the event loop for PostgreSQL, on one asynchronous connection per process.

In the thread pool a lookup cost a hop to a worker thread and back, a pool checkout with its
pre-ping round trip, then the SELECT's round trip. Here the lookups of a process go out from
the event loop on one psycopg `AsyncConnection` in autocommit, and the lookups that arrive while
one is on its way are sent together as the next SELECT (`prefix = ANY(...)`): under load one
round trip and one pass through psycopg answer many requests; alone, a request waits for
nobody. Nothing is cached: a revoked key is refused on the next request.

Whenever this connection cannot answer (it cannot be opened, the server dropped it), `lookup`
returns None and the caller looks the key up in the thread pool as before, whose pool
reconnects and whose errors are the API's usual ones; the next lookup opens a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from talktime.keys import Principal, presented, verified
from talktime.store.api_tables import api_keys
from talktime.store.rawsql import RawStatement

KEYS_BY_PREFIXES = RawStatement(
    sa.select(
        api_keys.c.prefix,
        api_keys.c.id,
        api_keys.c.secret_hash,
        api_keys.c.account_id,
        api_keys.c.admin,
        api_keys.c.revoked_at,
    ).where(
        api_keys.c.prefix == sa.any_(sa.bindparam("prefixes", type_=postgresql.ARRAY(sa.String)))
    )
)
"""`keys.KEY_BY_PREFIX` for many prefixes at once, each row naming its prefix."""

_PREFIX_TYPE = api_keys.c.prefix.type
assert isinstance(_PREFIX_TYPE, sa.String)
assert _PREFIX_TYPE.length is not None
_PREFIX_MAX = _PREFIX_TYPE.length
"""No stored key has a longer prefix (the column's length)."""


class AsyncKeyReader:
    """One psycopg `AsyncConnection` (autocommit) for key lookups, opened on first use."""

    def __init__(self, engine: sa.Engine) -> None:
        self.dialect = engine.dialect
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._args: list[Any] = list(args)
        self._kwargs: dict[str, Any] = dict(kwargs)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._waiting: list[tuple[str, asyncio.Future[list[Any] | None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.opened = 0  # connections opened so far
        self.queries = 0  # SELECTs answered so far (each for one lookup or more)

    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        return self._conn is not None and not self._conn.closed

    async def lookup(self, token: str, admin_token: str | None) -> Principal | None:
        """The key's principal (raises `InvalidApiKeyError` for a refused key), or None when
        this connection cannot answer and the thread pool should."""
        found = presented(token, admin_token)
        if isinstance(found, Principal):
            return found
        prefix, secret = found
        if len(prefix) > _PREFIX_MAX or "\x00" in prefix:
            return verified(secret, [])  # no stored key has it: refused, no query needed
        rows = await self._rows_of(prefix)
        return None if rows is None else verified(secret, rows)

    def _on_this_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop; a connection, its lock and its waiting lookups belong to the
        loop that made them (an app served again on a new loop starts afresh)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._conn, self._loop, self._opening = None, loop, asyncio.Lock()
            self._waiting, self._sender = [], None
        return loop

    async def _rows_of(self, prefix: str) -> list[Any] | None:
        """`KEY_BY_PREFIX`'s rows for ``prefix``, sent with the other lookups waiting now."""
        loop = self._on_this_loop()
        answer: asyncio.Future[list[Any] | None] = loop.create_future()
        self._waiting.append((prefix, answer))
        if self._sender is None:
            self._sender = loop.create_task(self._send_waiting())
        return await answer

    async def _send_waiting(self) -> None:
        """Send the waiting lookups, then those that arrived meanwhile, until none waits.
        A task of its own: a request that goes away never interrupts a query."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    found = await self._query(sorted({prefix for prefix, _ in batch}))
                except Exception as exc:
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                except BaseException:
                    for _, answer in batch:
                        answer.cancel()
                    raise
                for prefix, answer in batch:
                    if not answer.done():
                        answer.set_result(None if found is None else found.get(prefix, []))
        finally:
            self._sender = None

    async def _query(self, prefixes: list[str]) -> dict[str, list[Any]] | None:
        """The rows of ``prefixes`` by prefix, or None when the connection cannot answer."""
        conn = await self._connection()
        if conn is None:
            return None
        sql, params, make_row = KEYS_BY_PREFIXES.for_driver(self.dialect, {"prefixes": prefixes})
        assert make_row is not None
        try:
            cursor = conn.cursor()
            await cursor.execute(sql, params)
            rows = [make_row(*r) for r in await cursor.fetchall()]
            await cursor.close()
        except psycopg.Error:
            await self._drop(conn)
            return None
        except BaseException:  # cancelled mid-query: the connection's state is unknown
            await self._drop(conn)
            raise
        self.queries += 1
        by_prefix: dict[str, list[Any]] = {}
        for row in rows:
            by_prefix.setdefault(row.prefix, []).append(row)
        return by_prefix

    async def _connection(self) -> psycopg.AsyncConnection[Any] | None:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        assert self._opening is not None
        async with self._opening:
            if self._conn is None or self._conn.closed:
                try:
                    self._conn = await psycopg.AsyncConnection.connect(
                        *self._args, autocommit=True, **self._kwargs
                    )
                except psycopg.Error:
                    self._conn = None
                    return None
                self.opened += 1
            return self._conn

    async def _drop(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._conn is conn:
            self._conn = None
        with contextlib.suppress(psycopg.Error):
            await conn.close()

    async def close(self) -> None:
        """Close the connection (at the app's shutdown, on the loop that opened it)."""
        conn, self._conn = self._conn, None
        if conn is not None and self._loop is asyncio.get_running_loop():
            await conn.close()


def async_key_reader_for(engine: sa.Engine) -> AsyncKeyReader | None:
    """An `AsyncKeyReader` for a PostgreSQL engine, None for SQLite."""
    return AsyncKeyReader(engine) if engine.dialect.name == "postgresql" else None
