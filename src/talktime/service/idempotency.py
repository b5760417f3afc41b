"""Request-level idempotency: the response of each successful money-moving request by key.

Stored in the same transaction as the work, so a replay returns the original response byte for
byte; the same key with another request is refused; a refused request leaves no record.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import anyio.to_thread
import sqlalchemy as sa

from talktime.errors import TalktimeError
from talktime.service.errors import RequestConflictError
from talktime.service.groupcommit import GroupCommitter, Outcome
from talktime.store.api_tables import api_requests
from talktime.store.rawsql import (
    PendingRows,
    RawStatement,
    pairs_params,
    pairs_source,
    start_text,
)
from talktime.store.reuse import lost_race
from talktime.store.tables import purge_older
from talktime.store.writer import writing
from talktime.wallet.idempotency import RETENTION_MICROS


class KeepWritesError(Exception):
    """Raised by a unit of work to commit what it wrote and then refuse with ``refusal``
    (the wallet's `monthly_limit.reached` event must survive the refused charge)."""

    def __init__(self, refusal: Exception) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


@dataclass(frozen=True)
class StoredResponse:
    """A response kept for replays: HTTP status and the exact JSON text; `replayed` is True
    when it answers a key that had already answered (nothing was done this time)."""

    status: int
    body: str
    replayed: bool = False


def fingerprint(operation: str, request: Any) -> str:
    """A stable digest of an operation and its request data."""
    text = json.dumps([operation, request], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_REPLAY = RawStatement(
    sa.select(
        api_requests.c.operation,
        api_requests.c.fingerprint,
        api_requests.c.status,
        api_requests.c.response,
    ).where(
        api_requests.c.account_id == sa.bindparam("account_id"),
        api_requests.c.key == sa.bindparam("key"),
    )
)
_REMEMBER = RawStatement(api_requests.insert(), column_keys=[c.key for c in api_requests.c])
"""Rows for `executemany_rows` in the table's column order: account, key, operation,
fingerprint, status, response, time."""
"""Both run on every money-moving request: compiled once, executed on the DB-API cursor."""


UNDER_WAY = 0
"""The status of a placeholder row: a request that took its key and has not answered yet
(a purchase whose payment may have been taken). Any other request under the key is refused;
the request itself finds no answer and goes on."""


def replay(
    conn: sa.Connection, account_id: int, key: str, operation: str, digest: str
) -> StoredResponse | None:
    """The stored response for ``key``, None if unused (or held by this very request, still
    under way); refuse a key used for another request, answered or under way (a purchase
    with another amount under the key of one whose payment may have been taken: until it is
    finished, or declined, the key is that purchase's)."""
    rows = _REPLAY.rows(conn, {"account_id": account_id, "key": key})
    if not rows:
        return None
    row = rows[0]
    if int(row.status) == UNDER_WAY and (row.operation, row.fingerprint) == (operation, digest):
        return None  # this very request, still under way: it goes on
    return _replayed(row, key, operation, digest)  # another request's, under way or answered


def hold_key(conn: sa.Connection, account_id: int, key: str, operation: str, digest: str) -> None:
    """Take ``key`` for a request under way (a placeholder row), so that every other request
    under it is refused until `release_key` or `answer_held_key`. A row of this very request
    there already (its placeholder, left by an earlier attempt or written by a twin, or a
    twin's answer: the caller then replays it) is kept; any other row is 409 (another
    request answered under the key since the caller looked it up). A twin inserting at the
    same moment makes this raise IntegrityError (look the key up again)."""
    rows = _REPLAY.rows(conn, {"account_id": account_id, "key": key})
    if not rows:
        remember(conn, account_id, key, operation, digest, StoredResponse(UNDER_WAY, ""))
    elif (rows[0].operation, rows[0].fingerprint) != (operation, digest):
        raise _conflict(key)  # another request answered under the key since it was looked up


def answer_held_key(
    conn: sa.Connection,
    account_id: int,
    key: str,
    operation: str,
    digest: str,
    response: StoredResponse,
) -> None:
    """Store the answer of the request that holds ``key``: its placeholder row becomes the
    answer in place (an UPDATE: a delete and insert made twins deadlock on PostgreSQL), or
    the row is inserted when there is none (a purchase started before placeholders)."""
    updated = conn.execute(
        sa.update(api_requests)
        .where(
            api_requests.c.account_id == account_id,
            api_requests.c.key == key,
            api_requests.c.status == UNDER_WAY,
        )
        .values(
            operation=operation,
            fingerprint=digest,
            status=response.status,
            response=response.body,
            created_at=time.time_ns() // 1000,
        )
    ).rowcount
    if not updated:
        remember(conn, account_id, key, operation, digest, response)


def release_key(conn: sa.Connection, account_id: int, key: str) -> None:
    """Drop the placeholder of ``key`` (never a stored answer)."""
    conn.execute(
        sa.delete(api_requests).where(
            api_requests.c.account_id == account_id,
            api_requests.c.key == key,
            api_requests.c.status == UNDER_WAY,
        )
    )


def operation_of(conn: sa.Connection, account_id: int, key: str) -> str | None:
    """The operation of the response stored for ``key`` of the account, None if unused."""
    rows = _REPLAY.rows(conn, {"account_id": account_id, "key": key})
    return str(rows[0].operation) if rows else None


def _replayed(row: Any, key: str, operation: str, digest: str) -> StoredResponse:
    """The response stored in ``row`` for ``key``, as a replay; refuse another request."""
    if row.operation != operation or row.fingerprint != digest:
        raise _conflict(key)
    return StoredResponse(status=int(row.status), body=str(row.response), replayed=True)


def _conflict(key: str) -> RequestConflictError:
    return RequestConflictError(
        f"Idempotency-Key {key!r} was already used for a different request; "
        "use a new key for a new request.",
        idempotency_key=key,
    )


def remember(
    conn: sa.Connection,
    account_id: int,
    key: str,
    operation: str,
    digest: str,
    response: StoredResponse,
) -> None:
    """Record the response of a request that succeeded (inside its transaction)."""
    _REMEMBER.execute(
        conn,
        {
            "account_id": account_id,
            "key": key,
            "operation": operation,
            "fingerprint": digest,
            "status": response.status,
            "response": response.body,
            "created_at": time.time_ns() // 1000,
        },
    )


def run_once(
    engine: sa.Engine,
    account_id: int,
    key: str,
    operation: str,
    request: Any,
    work: Callable[[sa.Connection], tuple[int, Any]],
    committer: GroupCommitter | None = None,
) -> StoredResponse:
    """Run ``work`` in one transaction unless ``key`` already answered; return the response.

    ``work`` returns (status, JSON-able body); the body's text is stored with the key in the
    same transaction. A refusal raised by ``work`` rolls everything back and stores nothing.
    Two concurrent requests with one key: the second's record collides, it rolls back and
    replays the first's response. With a ``committer``, the work is a savepoint in the group
    committer's next batch and the response comes back once that batch committed.
    """
    digest = fingerprint(operation, request)
    if committer is not None:
        return run_grouped(committer, GroupedUnit(account_id, key, operation, digest, work))
    try:
        return _run_in_transaction(engine, account_id, key, operation, digest, work)
    except TalktimeError:
        # On PostgreSQL a concurrent request with the same key may have committed while this
        # one waited for the account's lock: its work then refuses (the number is now in use,
        # the call already completed). Answer as that request did, if it did.
        with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            stored = replay(conn, account_id, key, operation, digest)
        if stored is not None:
            return stored
        raise


def _run_in_transaction(
    engine: sa.Engine,
    account_id: int,
    key: str,
    operation: str,
    digest: str,
    work: Callable[[sa.Connection], tuple[int, Any]],
) -> StoredResponse:
    """`run_once` without a committer: the work and its record in one transaction."""
    for attempt in range(2):
        kept: KeepWritesError | None = None
        try:
            with writing(engine) as conn:
                stored = replay(conn, account_id, key, operation, digest)
                if stored is not None:
                    return stored
                try:
                    status, body = work(conn)
                except KeepWritesError as exc:
                    kept = exc
                else:
                    response = StoredResponse(status=status, body=_canonical(body))
                    remember(conn, account_id, key, operation, digest, response)
                    return response
        except sa.exc.IntegrityError:
            if attempt:
                raise
            continue
        assert kept is not None
        raise kept.refusal
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Refused:
    """A unit's refusal whose writes are kept (committed with the batch, then raised)."""

    refusal: Exception


SendWork = Callable[["GroupedUnit"], tuple[int, Any]]
"""Does one unit's work inside a pass together: (status, body), or raises a refusal before it
changed anything (`KeepWritesError` to keep what it wrote, as a unit alone does)."""
StartPass = Callable[[sa.Connection, list["GroupedUnit"]], tuple[SendWork, Callable[[], None]]]
"""Begins a pass together over its units (reads and locks what they all need) and returns the
work of one unit and the function that writes what the pass's units queued."""


@dataclass(eq=False)
class GroupedUnit:
    """The unit of work a group committer runs for one request: alone (in its savepoint, see
    `__call__`), or with others of its kind in one pass (``together``, with ``payload``
    carrying what the pass needs of the request)."""

    account_id: int
    key: str
    operation: str
    digest: str
    work: Callable[[sa.Connection], tuple[int, Any]]
    together: Callable[[sa.Connection, list[Any]], list[Outcome]] | None = None
    payload: Any = None
    answered: StoredResponse | None = field(default=None, init=False, repr=False)
    """The response this unit's last run stored, if it stored one (not yet known committed)."""

    def own(self, stored: StoredResponse) -> StoredResponse:
        """``stored`` as this request's answer: a first-time answer if it is the response
        this unit's last run stored (its batch ran again after a COMMIT whose reply was lost:
        that run did commit; a send's body carries the message id made for it, so no other
        request's record is equal), else the replay it is."""
        mine = self.answered
        if mine is not None and stored.body == mine.body and stored.status == mine.status:
            return mine
        return stored

    def __call__(self, conn: sa.Connection) -> StoredResponse | _Refused:
        account_id, key, operation, digest = self.account_id, self.key, self.operation, self.digest
        stored = replay(conn, account_id, key, operation, digest)
        if stored is not None:
            return self.own(stored)
        try:
            status, body = self.work(conn)
        except KeepWritesError as exc:
            return _Refused(exc.refusal)
        except TalktimeError:
            # On PostgreSQL another process's batch may have committed the same key after the
            # lookup above and before the work locked the account: the wallet then refuses the
            # key as used for another charge (its message id differs). Answer as that request
            # did (this read, after the lock, sees its commit), as `run_once` does.
            stored = replay(conn, account_id, key, operation, digest)
            if stored is not None:
                return stored
            raise
        response = StoredResponse(status=status, body=_canonical(body))
        remember(conn, account_id, key, operation, digest, response)
        self.answered = response
        return response


def run_together(conn: sa.Connection, units: list[GroupedUnit], start: StartPass) -> list[Outcome]:
    """Run many requests' units in one pass, each with the outcome it would have had alone:
    the stored responses of all their keys looked up at once (a key used twice in the pass
    answers its second use from the first), then ``start``'s reads, each unit's work, its
    writes, and one INSERT of every new response."""
    lookup = _start_lookup(conn, sorted({(u.account_id, u.key) for u in units}))
    one, write = start(conn, units)
    stored_rows = {(row.account_id, row.key): row for row in lookup.rows()}
    records: list[tuple[Any, ...]] = []
    answered: list[tuple[GroupedUnit, StoredResponse]] = []
    outcomes: list[Outcome] = []
    for unit in units:
        account_id, key, operation, digest = unit.account_id, unit.key, unit.operation, unit.digest
        try:
            row = stored_rows.get((account_id, key))  # stored, or answered earlier in the pass
            stored = _replayed(row, key, operation, digest) if row is not None else None
            if stored is not None:
                outcomes.append((True, unit.own(stored)))
                continue
            try:
                status, body = one(unit)
            except KeepWritesError as exc:
                outcomes.append((True, _Refused(exc.refusal)))
                continue
            except TalktimeError:
                # as in `GroupedUnit.__call__`: another process may have answered this key
                stored = replay(conn, account_id, key, operation, digest)
                if stored is not None:
                    outcomes.append((True, stored))
                    continue
                raise
        except TalktimeError as refusal:
            outcomes.append((False, refusal))
            continue
        response = StoredResponse(status=status, body=_canonical(body))
        record = (account_id, key, operation, digest, status, response.body, time.time_ns() // 1000)
        stored_rows[(account_id, key)] = _Answered(*record[:6])
        records.append(record)
        answered.append((unit, response))
        outcomes.append((True, response))
    write()
    if records:
        _REMEMBER.executemany_rows(conn, records)
    for unit, response in answered:
        unit.answered = response
    return outcomes


_LOOKUP_COLUMNS = ("account_id", "key", "operation", "fingerprint", "status", "response")


def _start_lookup(conn: sa.Connection, pairs: list[tuple[int, str]]) -> PendingRows:
    """The stored responses of many (account, key) pairs in one SELECT, sent now (on
    PostgreSQL its rows come back with the round trip of whatever is read next)."""
    dialect = conn.dialect.name
    columns = ", ".join(f"r.{c}" for c in _LOOKUP_COLUMNS)
    sql = (
        f"SELECT {columns} FROM {pairs_source(dialect)} JOIN api_requests AS r "
        "ON r.key = j.k AND r.account_id = j.a"
    )
    return start_text(conn, sql, pairs_params(dialect, pairs), _LOOKUP_COLUMNS)


class _Answered(NamedTuple):
    """A response given earlier in the same pass, shaped as a stored row."""

    account_id: int
    key: str
    operation: str
    fingerprint: str
    status: int
    response: str


def _retry_once(exc: sa.exc.DBAPIError, attempt: int) -> bool:
    """Whether a unit that failed with ``exc`` on its first attempt goes again: another
    process committed the same key first (the next batch replays it), or PostgreSQL picked it
    as a deadlock victim (batches of two processes locking accounts in different orders)."""
    if attempt:
        return False
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    return lost_race(exc)


def _answer(outcome: StoredResponse | _Refused) -> StoredResponse:
    if isinstance(outcome, _Refused):
        raise outcome.refusal
    return outcome


def run_grouped(committer: GroupCommitter, unit: GroupedUnit) -> StoredResponse:
    """Run ``unit`` in the committer's next batch; its response once the batch committed
    (a refusal raised then). Retried once after a duplicate key or a deadlock."""
    for attempt in range(2):
        try:
            outcome = committer.submit(unit, unit.account_id)
        except sa.exc.DBAPIError as exc:
            if _retry_once(exc, attempt):
                unit.answered = None  # what it stored was rolled back
                continue
            raise
        return _answer(outcome)
    raise AssertionError("unreachable")


async def run_once_async(
    engine: sa.Engine,
    account_id: int,
    key: str,
    operation: str,
    request: Any,
    work: Callable[[sa.Connection], tuple[int, Any]],
    committer: GroupCommitter | None = None,
) -> StoredResponse:
    """`run_once` for a coroutine. With a ``committer`` the request awaits its batch without
    holding a thread; without one the commit-per-request path runs in the thread pool."""
    if committer is None:
        return await anyio.to_thread.run_sync(
            run_once, engine, account_id, key, operation, request, work
        )
    digest = fingerprint(operation, request)
    return await run_grouped_async(committer, GroupedUnit(account_id, key, operation, digest, work))


async def run_grouped_async(committer: GroupCommitter, unit: GroupedUnit) -> StoredResponse:
    """`run_grouped` for a coroutine: awaits the batch without holding a thread."""
    for attempt in range(2):
        try:
            outcome = await committer.run(unit, unit.account_id)
        except sa.exc.DBAPIError as exc:
            if _retry_once(exc, attempt):
                unit.answered = None  # what it stored was rolled back
                continue
            raise
        return _answer(outcome)
    raise AssertionError("unreachable")


def _canonical(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def purge(
    conn: sa.Connection,
    now: int,
    retention: int = RETENTION_MICROS,
    *,
    limit: int | None = None,
) -> int:
    """Delete stored responses older than ``retention`` (never less than 30 days), the oldest
    ``limit`` of them when given (a caller purging a backlog commits between batches); how
    many."""
    return purge_older(conn, api_requests, now - max(retention, RETENTION_MICROS), limit)
