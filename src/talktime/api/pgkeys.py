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
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from talktime.keys import CHECKED_COLUMNS, Principal, presented, verified
from talktime.store.api_tables import api_keys
from talktime.store.rawsql import RawStatement

KEYS_BY_PREFIXES = RawStatement(
    sa.select(api_keys.c.prefix, *CHECKED_COLUMNS).where(
        api_keys.c.prefix == sa.any_(sa.bindparam("prefixes", type_=postgresql.ARRAY(sa.String)))
    )
)
"""`keys.KEY_BY_PREFIX` for many prefixes at once, each row naming its prefix."""

_PREFIX_TYPE = api_keys.c.prefix.type
assert isinstance(_PREFIX_TYPE, sa.String)
assert _PREFIX_TYPE.length is not None
_PREFIX_MAX = _PREFIX_TYPE.length
"""No stored key has a longer prefix (the column's length)."""


@dataclass
class _OnLoop:
    """A reader's state on one event loop: its connection and the lookups waiting to go out."""

    opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    conn: psycopg.AsyncConnection[Any] | None = None
    waiting: list[tuple[str, asyncio.Future[list[Any] | None]]] = field(default_factory=list)
    sender: asyncio.Task[None] | None = None


class AsyncKeyReader:
    """One psycopg `AsyncConnection` (autocommit) for key lookups, opened on first use.

    A connection and its waiting lookups belong to the event loop that made them. A served
    process has one loop; an app driven from several loops at once (a test client without its
    context manager runs each request on a loop of its own) gets a connection per loop, closed
    with the loop's state when that loop is gone."""

    def __init__(self, engine: sa.Engine) -> None:
        self.dialect = engine.dialect
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._args: list[Any] = list(args)
        self._kwargs: dict[str, Any] = dict(kwargs)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()  # loops of other threads may add theirs meanwhile
        self.opened = 0  # connections opened so far
        self.queries = 0  # SELECTs answered so far (each for one lookup or more)

    @property
    def connected(self) -> bool:
        """True while a connection is open on some loop."""
        with self._guard:
            states = list(self._loops.values())
        return any(s.conn is not None and not s.conn.closed for s in states)

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

    def _here(self) -> tuple[asyncio.AbstractEventLoop, _OnLoop]:
        """The running loop and this reader's state on it."""
        loop = asyncio.get_running_loop()
        with self._guard:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _OnLoop()
        return loop, state

    async def _rows_of(self, prefix: str) -> list[Any] | None:
        """`KEY_BY_PREFIX`'s rows for ``prefix``, sent with the other lookups waiting now."""
        loop, state = self._here()
        answer: asyncio.Future[list[Any] | None] = loop.create_future()
        state.waiting.append((prefix, answer))
        if state.sender is None:
            state.sender = loop.create_task(self._send_waiting(state))
        return await answer

    async def _send_waiting(self, state: _OnLoop) -> None:
        """Send the waiting lookups, then those that arrived meanwhile, until none waits.
        A task of its own: a request that goes away never interrupts a query."""
        try:
            while state.waiting:
                batch, state.waiting = state.waiting, []
                try:
                    found = await self._query(state, sorted({prefix for prefix, _ in batch}))
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
            state.sender = None

    async def _query(self, state: _OnLoop, prefixes: list[str]) -> dict[str, list[Any]] | None:
        """The rows of ``prefixes`` by prefix, or None when the connection cannot answer."""
        conn = await self._connection(state)
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
            await self._drop(state, conn)
            return None
        except BaseException:  # cancelled mid-query: the connection's state is unknown
            await self._drop(state, conn)
            raise
        self.queries += 1
        by_prefix: dict[str, list[Any]] = {}
        for row in rows:
            by_prefix.setdefault(row.prefix, []).append(row)
        return by_prefix

    async def _connection(self, state: _OnLoop) -> psycopg.AsyncConnection[Any] | None:
        conn = state.conn
        if conn is not None and not conn.closed:
            return conn
        async with state.opening:
            if state.conn is None or state.conn.closed:
                try:
                    state.conn = await psycopg.AsyncConnection.connect(
                        *self._args, autocommit=True, **self._kwargs
                    )
                except psycopg.Error:
                    state.conn = None
                    return None
                self.opened += 1
            return state.conn

    @staticmethod
    async def _drop(state: _OnLoop, conn: psycopg.AsyncConnection[Any]) -> None:
        if state.conn is conn:
            state.conn = None
        with contextlib.suppress(psycopg.Error):
            await conn.close()

    async def close(self) -> None:
        """Close the running loop's connection (at the app's shutdown); a connection of a loop
        that is gone is closed when it is collected with that loop's state."""
        loop = asyncio.get_running_loop()
        with self._guard:
            state = self._loops.pop(loop, None)
        if state is not None and state.conn is not None:
            await state.conn.close()


def async_key_reader_for(engine: sa.Engine) -> AsyncKeyReader | None:
    """An `AsyncKeyReader` for a PostgreSQL engine, None for SQLite."""
    return AsyncKeyReader(engine) if engine.dialect.name == "postgresql" else None
