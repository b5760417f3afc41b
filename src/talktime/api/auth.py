"""API-key authentication: `Authorization: Bearer tt_...` -> the principal a request acts as.

Account keys act for their own account only; admin keys (from `api_keys` or `TALKTIME_ADMIN_KEY`)
may use the admin endpoints. A missing or bad key is a 401 problem, never a hint of which part
was wrong.
"""

from __future__ import annotations

import threading
from typing import Annotated

import anyio.to_thread
import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from talktime import keys
from talktime.api.pgkeys import AsyncKeyReader
from talktime.errors import TalktimeError
from talktime.keys import InvalidApiKeyError, Principal, authenticate
from talktime.store.engine import is_sqlite_busy, is_sqlite_file

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tt_...`")


class AdminRequiredError(TalktimeError):
    code = "admin_required"
    status = 403
    title = "Admin key required"


class AccountKeyRequiredError(TalktimeError):
    code = "account_key_required"
    status = 403
    title = "Account key required"


class LoopKeyReader:
    """Key lookups on the event loop for a SQLite file database, on one connection that never
    waits for a lock.

    In WAL mode a read neither takes nor waits for the write lock, so the lookup (one indexed
    SELECT in autocommit: tens of microseconds) costs less than the hop to the thread pool
    and back. The connection is opened in the thread pool (`connect`: opening may wait for a
    lock) and its busy timeout is then 0: if SQLite ever answers "busy", `lookup` returns None
    and the caller uses the thread pool, so the event loop never sleeps in SQLite's busy
    handler. Revocation takes effect at once: nothing is cached.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None
        self._lock = threading.Lock()  # the loop never waits for it: busy means "use the pool"

    @property
    def connected(self) -> bool:
        """True once `connect` has opened the connection (and until an error drops it)."""
        return self._conn is not None

    def connect(self) -> None:
        """Open the connection; call it from a worker thread, never from the event loop."""
        with self._lock:
            if self._conn is not None:
                return
            conn = self.engine.connect().execution_options(sqlite_begin="DEFERRED")
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA busy_timeout=0")
            self._conn = conn

    def lookup(self, token: str, admin_token: str | None) -> Principal | None:
        """The key's principal (raises `InvalidApiKeyError`), or None when the connection is
        not open, is in use by another thread, or SQLite was busy."""
        if self._conn is None or not self._lock.acquire(blocking=False):
            return None
        try:
            conn = self._conn
            if conn is None:
                return None
            try:
                # One SELECT in SQLite's autocommit mode (the engine's driver connections have
                # no implicit transactions): the statement is its own read transaction, so no
                # BEGIN and COMMIT calls around it.
                return authenticate(conn, token, admin_token)
            finally:
                if conn.in_transaction():  # never left open: it would pin the WAL
                    conn.rollback()
        except InvalidApiKeyError:
            raise
        except sa.exc.OperationalError as exc:
            if is_sqlite_busy(exc):
                return None
            self._drop()
            raise
        except BaseException:
            self._drop()
            raise
        finally:
            self._lock.release()

    def _drop(self) -> None:
        """Close the connection without giving it back to the pool (its busy timeout is 0)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()
            conn.close()

    def close(self) -> None:
        """Give up the connection (at the app's shutdown)."""
        with self._lock:
            self._drop()


def key_reader_for(engine: sa.Engine) -> LoopKeyReader | None:
    """A `LoopKeyReader` for a SQLite file database; None elsewhere (PostgreSQL's lookup is
    a network round trip, and an in-memory SQLite database has one connection for all)."""
    return LoopKeyReader(engine) if is_sqlite_file(engine) else None


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The principal behind the request's API key (401 if none is valid).

    The lookup runs on the event loop: on a SQLite file database on `LoopKeyReader`'s
    connection (in the thread pool if SQLite is busy), on PostgreSQL on `AsyncKeyReader`'s
    (in the thread pool if that connection cannot answer). Elsewhere, and in those cases, it
    runs in the thread pool, on PostgreSQL in autocommit: no BEGIN/ROLLBACK round trips around
    one SELECT."""
    if credentials is None or not credentials.credentials:
        raise keys.refusal()  # the sentence of a wrong key: a missing one is told apart by nothing
    admin = request.app.state.settings.admin_key
    engine: sa.Engine = request.app.state.engine
    token = credentials.credentials
    admin_token = admin.get_secret_value() if admin else None
    pg_reader: AsyncKeyReader | None = getattr(request.app.state, "async_key_reader", None)
    if pg_reader is not None:
        known = await pg_reader.lookup(token, admin_token)
        if known is not None:
            return known
    reader: LoopKeyReader | None = getattr(request.app.state, "key_reader", None)
    if reader is not None:
        found = reader.lookup(token, admin_token)
        if found is not None:
            return found
        if not reader.connected:
            return await anyio.to_thread.run_sync(_connect_and_lookup, reader, token, admin_token)
    return await anyio.to_thread.run_sync(_lookup, engine, token, admin_token)


def _connect_and_lookup(reader: LoopKeyReader, token: str, admin_token: str | None) -> Principal:
    """In a worker thread: open the loop reader's connection (the next lookups run on the
    loop), then look the key up as usual."""
    try:
        reader.connect()
    except sa.exc.OperationalError as exc:
        if not is_sqlite_busy(exc):
            raise
    return _lookup(reader.engine, token, admin_token)


def _lookup(engine: sa.Engine, token: str, admin_token: str | None) -> Principal:
    options: dict[str, str] = (
        {"sqlite_begin": "DEFERRED"}
        if engine.dialect.name == "sqlite"
        else {"isolation_level": "AUTOCOMMIT"}
    )
    with engine.connect().execution_options(**options) as conn:
        return authenticate(conn, token, admin_token)


async def account_id(who: Annotated[Principal, Depends(principal)]) -> int:
    """The account an account key acts for (admin keys use the admin endpoints). `async`,
    though it never awaits: FastAPI runs a plain `def` dependency in the thread pool, a hop
    to a worker thread and back on every request."""
    if who.account_id is None:
        raise AccountKeyRequiredError(
            "This endpoint acts for one account: use that account's API key."
        )
    return who.account_id


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Only an admin key passes (`async` for the reason `account_id` gives)."""
    if not who.admin:
        raise AdminRequiredError("This endpoint needs an admin API key.")
    return who


AccountId = Annotated[int, Depends(account_id)]
Admin = Annotated[Principal, Depends(admin)]
