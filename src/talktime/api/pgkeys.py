"""API-key lookups on the event loop for PostgreSQL, on one asynchronous connection per process.

In the thread pool a lookup cost a hop to a worker thread and back, a pool checkout with its
pre-ping round trip, then the SELECT's round trip. Here it is one SELECT sent from the event
loop on a psycopg `AsyncConnection` in autocommit; concurrent lookups take turns on it (psycopg
serializes them), each one round trip on the loopback or the local network. Nothing is cached:
a revoked key is refused on the next request.

Whenever this connection cannot answer (it cannot be opened, the server dropped it, the lookup
was interrupted), `lookup` returns None and the caller looks the key up in the thread pool as
before, whose pool reconnects and whose errors are the API's usual ones; the next lookup opens
a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import sqlalchemy as sa

from talktime.keys import KEY_BY_PREFIX, Principal, presented, verified


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
        self.opened = 0  # connections opened so far

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
        conn = await self._connection()
        if conn is None:
            return None
        sql, params, make_row = KEY_BY_PREFIX.for_driver(self.dialect, {"prefix": prefix})
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
        return verified(secret, rows)

    async def _connection(self) -> psycopg.AsyncConnection[Any] | None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a connection belongs to the loop that opened it
            self._conn, self._loop, self._opening = None, loop, asyncio.Lock()
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
