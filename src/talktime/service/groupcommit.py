"""Group commit: one writer thread per engine runs the units of work of concurrent requests
together in ONE transaction, a SAVEPOINT per unit, so many charges share one commit (one fsync).

A unit that raises rolls back only its savepoint; each caller gets its result or exception only
after the transaction committed; if the commit fails, every unit of the batch gets that error.
A batch runs its units in the order of the accounts they lock, so the batches of several
processes never deadlock on PostgreSQL.

Units of one kind can also run *together*: a unit with a ``together`` attribute names a
function that runs a whole batch of such units in one pass (one read of each table for the
batch, one write per table), returning each unit's outcome. The writer uses it when every unit
of a batch carries the same one, inside a savepoint of its own; should it raise, that savepoint
is rolled back and the units run one by one as above.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from queue import Empty, Queue
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from talktime.errors import TalktimeError
from talktime.service.room import Room
from talktime.store.engine import is_sqlite_busy
from talktime.store.rawsql import begin_in_pipeline, driver_errors, pipeline
from talktime.store.reuse import ConnectionStack, is_disconnect

T = TypeVar("T")
Unit = Callable[[sa.Connection], Any]
Outcome = tuple[bool, Any]
"""(True, result) or (False, exception): what a unit's caller gets."""
Together = Callable[[sa.Connection, list[Any]], list[Outcome]]
"""Runs a batch of units of one kind in one pass: one outcome per unit, in order; raises to
have the writer run them one by one instead (nothing it wrote is kept then)."""

_log = logging.getLogger(__name__)

IDLE_EXIT_SECONDS = 2.0
"""An idle writer thread exits after this long; the next unit starts a new one."""


class WriterBusyError(TalktimeError):
    """The writer's queue stayed full: the service is overloaded."""

    code = "service_busy"
    status = 503
    title = "Service busy"


@dataclass(frozen=True)
class WriterStats:
    """What one process's writer has done since it started (counters only grow)."""

    batches: int
    """Transactions committed."""
    units: int
    """Units of work in them (answered requests, refusals included)."""
    batch_seconds: float
    """Wall time from taking the turn (SQLite's write lock) to the commit's return: on SQLite,
    its growth per second of wall time is the share of time this process held the lock."""
    commit_seconds: float
    """Wall time in COMMIT (the fsync on SQLite)."""
    waiting: int
    """Units queued now, not yet in a batch."""
    together: int = 0
    """Batches whose units ran together in one pass (see the module's docstring)."""
    fallbacks: int = 0
    """Batches whose pass together raised, so their units ran one by one."""


NO_WRITES = WriterStats(batches=0, units=0, batch_seconds=0.0, commit_seconds=0.0, waiting=0)
"""The counters of a process without a writer (group commit off, or nothing sent yet)."""


@dataclass
class _Pending:
    unit: Unit
    resolve: Callable[[bool, Any], None]
    """Called by the writer thread with (True, result) or (False, exception)."""
    order: int = -1
    """The account the unit locks: a batch runs its units in this order (see `_commit`)."""


class GroupCommitter:
    """Runs submitted units in batches of at most ``max_batch``: the first unit and whatever
    else is queued once the writer has its turn (``turn``: SQLite's writer lock), plus what
    arrives within ``window_ms`` after the first (0: no waiting; units that arrive while a
    batch commits form the next one); at most ``max_queue`` units wait, and a unit that finds
    no room waits for it up to ``queue_timeout_s`` from its arrival (then `WriterBusyError`).
    Thread-safe."""

    def __init__(
        self,
        engine: sa.Engine,
        window_ms: float,
        max_batch: int = 64,
        max_queue: int = 1024,
        queue_timeout_s: float = 5.0,
        turn: Callable[[sa.Engine], AbstractContextManager[object]] | None = None,
    ) -> None:
        if window_ms < 0 or max_batch < 1 or max_queue < 1:
            raise ValueError("window_ms >= 0, max_batch >= 1 and max_queue >= 1 are required")
        self._engine = weakref.ref(engine)  # the registry must not keep a dropped engine alive
        self._window = window_ms / 1000
        self._max_batch = max_batch
        self._queue: Queue[_Pending] = Queue()
        self._room = Room(max_queue)
        """A place per queued unit: taken before it is queued, given back when the writer
        takes it off the queue."""
        self._queue_timeout = queue_timeout_s
        self._turn = turn
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        """How many transactions the writer has committed (for tests and metrics)."""
        self.units = 0
        self.batch_seconds = 0.0
        self.commit_seconds = 0.0
        self.together = 0
        self.fallbacks = 0

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    @property
    def waiting(self) -> int:
        """How many submitted units wait for the writer (not yet in a batch)."""
        return self._queue.qsize()

    def stats(self) -> WriterStats:
        """The writer's counters (read from any thread; only the writer updates them)."""
        return WriterStats(
            self.batches,
            self.units,
            self.batch_seconds,
            self.commit_seconds,
            self.waiting,
            self.together,
            self.fallbacks,
        )

    def submit(self, unit: Callable[[sa.Connection], T], account_id: int = -1) -> T:
        """Run ``unit`` in the next batch; its result (or exception) once the batch committed.
        Blocks the calling thread until then. ``account_id``: the account the unit locks."""
        future: Future[T] = Future()

        def resolve(ok: bool, value: Any) -> None:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        deadline = time.monotonic() + self._queue_timeout
        self._refuse_if_closed()
        if not self._room.take(deadline):
            raise _busy()
        self._enqueue(_Pending(unit, resolve, account_id))
        return future.result()

    async def run(self, unit: Callable[[sa.Connection], T], account_id: int = -1) -> T:
        """`submit` for a coroutine: awaits an asyncio future that the writer completes with
        ``loop.call_soon_threadsafe``, so no thread waits for the batch (nor for room in the
        queue: each request's wait for room ends at its own deadline, however many wait)."""
        deadline = time.monotonic() + self._queue_timeout
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if future.done():  # the request was cancelled (its client went away)
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def resolve(ok: bool, value: Any) -> None:
            with suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(settle, ok, value)

        self._refuse_if_closed()
        if not await self._room.take_async(deadline):
            raise _busy()
        self._enqueue(_Pending(unit, resolve, account_id))  # no await between: never lost
        return await future

    def _refuse_if_closed(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the group committer is closed")

    def _enqueue(self, pending: _Pending) -> None:
        """Queue ``pending``, which holds a place of the room, and start the writer thread if
        it is not running."""
        self._queue.put_nowait(pending)
        with self._lock:  # an idle writer leaves only under this lock with the queue empty
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="talktime-group-commit", daemon=True
                )
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new units, let the writer finish what is queued, and wait for it."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put_nowait(_WAKE)  # ends an idle wait at once
            thread.join(timeout)

    def _run(self) -> None:
        # The writer's connection is kept from one batch to the next while it runs (no pool
        # checkout, and on PostgreSQL no pre-ping round trip, per batch); given back when the
        # writer leaves after its idle wait.
        connections: ConnectionStack | None = None
        try:
            while True:
                first = self._first()
                if first is None:
                    with self._lock:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                if connections is None and (engine := self._engine()) is not None:
                    connections = ConnectionStack(engine, keep=1)  # holds the engine meanwhile
                self._commit(first, connections)
        finally:
            if connections is not None:
                connections.close()

    def _first(self) -> _Pending | None:
        """The next unit, None after an idle wait (or a wake-up)."""
        wait = 0.05 if self._closed else IDLE_EXIT_SECONDS
        try:
            first = self._queue.get(timeout=wait)
        except Empty:
            return None
        if first is _WAKE:
            return None
        self._room.give_back()
        return first

    def _take_queued(self, batch: list[_Pending]) -> None:
        """Add every unit queued now to ``batch``."""
        while True:
            try:
                pending = self._queue.get_nowait()
            except Empty:
                return
            if pending is not _WAKE:
                self._room.give_back()
                batch.append(pending)

    def _fill(self, batch: list[_Pending], deadline: float) -> None:
        """Add what is queued, and what arrives until ``deadline``, up to ``max_batch``."""
        while len(batch) < self._max_batch:
            try:
                pending = self._queue.get_nowait()
            except Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    pending = self._queue.get(timeout=left)
                except Empty:
                    break
            if pending is not _WAKE:
                self._room.give_back()
                batch.append(pending)

    def _commit(self, first: _Pending, connections: ConnectionStack | None) -> None:
        """Take the writer's turn, fill the batch (units that arrived while the turn was
        awaited join it), run it in one transaction and answer every unit after the commit."""
        deadline = time.monotonic() + self._window
        batch = [first]
        in_turn = False
        try:
            if connections is None:
                raise RuntimeError("the database engine is gone")
            turn = self._turn(connections.engine) if self._turn else nullcontext()
            with turn:
                in_turn = True
                held_from = time.perf_counter()
                self._fill(batch, deadline)
                # Units lock their accounts as they run: in account order, so two processes'
                # batches (or a batch and a request's own transaction on PostgreSQL) never
                # wait for each other in a cycle. A deadlock victim was a 500 where it was not
                # a retried unit; the sort is stable, so one account's units keep their order.
                batch.sort(key=_order)
                outcomes, committing, together = _run_batch(connections, batch)
                held = time.perf_counter() - held_from
        except BaseException as exc:  # the commit (or BEGIN) failed: nobody is acknowledged
            if not in_turn and is_sqlite_busy(exc):
                # The turn did not come within the busy timeout: every unit queued meanwhile
                # has waited for it as long, and would otherwise wait that long again for
                # each unit in front of it.
                self._take_queued(batch)
            for pending in batch:
                pending.resolve(False, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.units += len(batch)
        self.batch_seconds += held
        self.commit_seconds += committing
        if together is not None:
            self.together += together
            self.fallbacks += not together
        for pending, (ok, value) in zip(batch, outcomes, strict=True):
            pending.resolve(ok, value)


def _run_batch(
    connections: ConnectionStack, batch: list[_Pending]
) -> tuple[list[Outcome], float, bool | None]:
    """Every unit of ``batch`` in one transaction, committed; each unit's outcome, the
    seconds the COMMIT took, and whether the units ran together (None: not tried, False: the
    pass together raised and they ran one by one).

    The writer reuses its connection between batches without a pre-ping, so a connection the
    server dropped in the meantime fails the batch with a disconnect: the batch then runs once
    more on a fresh connection. That is safe even when the COMMIT was what failed: the
    service's units look up their idempotency record first, so a unit whose first run did
    commit answers from its record, as a first-time answer (`GroupedUnit.own`)."""
    together = _together_of(batch)
    for attempt in range(2):
        ran_together: bool | None = None
        try:
            with connections.begin() as conn:
                found = None
                if together is not None:
                    found = _run_together(conn, together, [p.unit for p in batch])
                    ran_together = found is not None
                outcomes = found if found is not None else [_run_unit(conn, p.unit) for p in batch]
                committing = time.perf_counter()
        except sa.exc.DBAPIError as exc:
            if attempt or not is_disconnect(exc):
                raise
            continue
        return outcomes, time.perf_counter() - committing, ran_together
    raise AssertionError("unreachable")


def _together_of(batch: list[_Pending]) -> Together | None:
    """The function that runs every unit of ``batch`` in one pass, if they share one (and
    there is more than one unit: one alone runs as it always did)."""
    if len(batch) < 2:
        return None
    together = getattr(batch[0].unit, "together", None)
    if together is None or any(getattr(p.unit, "together", None) is not together for p in batch):
        return None
    return cast(Together, together)


def _run_together(
    conn: sa.Connection, together: Together, units: list[Unit]
) -> list[Outcome] | None:
    """Run ``units`` in one pass inside a savepoint: their outcomes, or None when the pass
    raised (its savepoint rolled back: nothing it wrote is kept). A refused unit is an outcome,
    not a raise: the pass itself writes only what its units that went through (and refusals
    that keep their writes) wrote."""
    cursor = conn.connection.cursor()
    try:
        try:
            with pipeline(conn), begin_in_pipeline(conn):  # BEGIN goes out with the SAVEPOINT
                _raw(conn, cursor, "SAVEPOINT talktime_batch")
                outcomes = together(conn, units)
                if len(outcomes) != len(units):
                    raise AssertionError("a pass together gives one outcome per unit")
        except Exception as exc:
            if is_disconnect(exc):
                raise
            _raw(conn, cursor, "ROLLBACK TO SAVEPOINT talktime_batch")
            _log.debug("the batch's units run one by one: their pass together raised %r", exc)
            return None
        return outcomes
    finally:
        cursor.close()


def _order(pending: _Pending) -> int:
    return pending.order


_WAKE = _Pending(lambda conn: None, lambda ok, value: None)
"""Put by `close` to wake an idle writer (it holds no place of the room); never run."""


def _busy() -> WriterBusyError:
    return WriterBusyError("Too many requests are waiting to be written; retry in a moment.")


def _run_unit(conn: sa.Connection, unit: Unit) -> Outcome:
    """Run one unit inside its own savepoint: (True, result) or (False, exception).

    The statements go straight to the DB-API cursor (SQLAlchemy's nested-transaction
    bookkeeping cost more than the statements), and a savepoint is never released: the next
    unit's savepoint of the same name nests inside it, ``ROLLBACK TO`` undoes only the newest
    one, and the batch's COMMIT ends them all. One round trip per unit fewer on PostgreSQL.

    On PostgreSQL the unit runs in one pipeline: the SAVEPOINT goes out with the unit's first
    read, and the writes queued after its last read go out together when the unit ends (the
    writer waits for the server once per read and once for all the writes, not per
    statement). A write that fails there fails the unit, as it would have inside it."""
    cursor = conn.connection.cursor()
    try:
        try:
            with pipeline(conn), begin_in_pipeline(conn):  # BEGIN goes out with the SAVEPOINT
                _raw(conn, cursor, "SAVEPOINT talktime_unit")
                result = unit(conn)
        except Exception as exc:
            if is_disconnect(exc):  # the whole transaction is gone, not just this unit's part
                raise
            _raw(conn, cursor, "ROLLBACK TO SAVEPOINT talktime_unit")
            return False, exc
        return True, result
    finally:
        cursor.close()


def _raw(conn: sa.Connection, cursor: Any, statement: str) -> None:
    with driver_errors(conn, statement):
        cursor.execute(statement)


_COMMITTERS: weakref.WeakKeyDictionary[sa.Engine, GroupCommitter] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def committer_for(
    engine: sa.Engine,
    enabled: bool,
    window_ms: float = 0.0,
    turn: Callable[[sa.Engine], AbstractContextManager[object]] | None = None,
) -> GroupCommitter | None:
    """The process's group committer for ``engine`` (None when not ``enabled``); it waits
    ``window_ms`` after a batch's first unit (0: takes only what is already queued); ``turn``
    is entered around each batch (SQLite's writer lock)."""
    if not enabled:
        return None
    with _GUARD:
        committer = _COMMITTERS.get(engine)
        if committer is None or committer.closed:
            committer = GroupCommitter(engine, window_ms, turn=turn)
            _COMMITTERS[engine] = committer
    return committer


def stats_for(engine: sa.Engine) -> WriterStats:
    """The counters of this process's group committer for ``engine`` (`NO_WRITES` if it has
    none)."""
    with _GUARD:
        committer = _COMMITTERS.get(engine)
    return committer.stats() if committer is not None else NO_WRITES


def close(engine: sa.Engine) -> None:
    """Drain and stop ``engine``'s group committer, if it has one (the app's shutdown)."""
    with _GUARD:
        committer = _COMMITTERS.pop(engine, None)
    if committer is not None:
        committer.close()
