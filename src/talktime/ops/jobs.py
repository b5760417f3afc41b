"""The job queue: enqueue with a dedupe key, claim under a lease, finish, fail with back-off.

A claim is `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL (so workers on many hosts never take
the same row) and the same statement under SQLite's `BEGIN IMMEDIATE` write lock (one writer at a
time). A claimed job carries a lease (`locked_until`); a worker that dies leaves the lease to run
out and the job is claimed again. Finishing is fenced on (worker, attempt), so a worker whose lease
was taken over cannot overwrite the new owner's result. Handlers must therefore be idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from talktime.ops.clock import SECOND, now_us
from talktime.store.ops_tables import jobs
from talktime.store.writer import writing

STATES = ("pending", "running", "done", "failed")
DEFAULT_LEASE_US = 60 * SECOND
MAX_BACKOFF_US = 3600 * SECOND


@dataclass(frozen=True)
class Job:
    """A claimed job: what to do and which attempt this is."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    max_attempts: int
    run_at: int
    locked_by: str
    locked_until: int


def _insert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(jobs)
    return sqlite.insert(jobs)


def enqueue(
    conn: sa.Connection,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    run_at: int | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 10,
    now: int | None = None,
) -> int | None:
    """Queue a job in the caller's transaction; returns its id, or None if the key exists.

    With a `dedupe_key`, enqueueing twice (from two workers, or a retry) makes one job only.
    """
    now = now_us() if now is None else now
    stmt = (
        _insert(conn)
        .values(
            kind=kind,
            payload=dict(payload or {}),
            state="pending",
            attempts=0,
            max_attempts=max_attempts,
            run_at=now if run_at is None else run_at,
            dedupe_key=dedupe_key,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(jobs.c.id)
    )
    job_id = conn.execute(stmt).scalar_one_or_none()
    return None if job_id is None else int(job_id)


def claim(
    engine: sa.Engine,
    worker: str,
    *,
    limit: int = 1,
    lease_us: int = DEFAULT_LEASE_US,
    now: int | None = None,
    kinds: tuple[str, ...] | None = None,
) -> list[Job]:
    """Take up to `limit` due jobs for `worker`: pending ones whose time has come, and running ones
    whose lease ran out (their worker died). Each claim counts as an attempt."""
    now = now_us() if now is None else now
    lapsed = sa.and_(jobs.c.state == "running", jobs.c.locked_until < now)
    due = sa.or_(
        sa.and_(jobs.c.state == "pending", jobs.c.run_at <= now),
        sa.and_(lapsed, jobs.c.attempts < jobs.c.max_attempts),
    )
    pick = sa.select(jobs.c.id).where(due)
    if kinds is not None:
        pick = pick.where(jobs.c.kind.in_(kinds))
    pick = pick.order_by(jobs.c.run_at, jobs.c.id).limit(limit).with_for_update(skip_locked=True)
    with writing(engine) as conn:
        _fail_abandoned(conn, lapsed, kinds, now)
        ids = [row[0] for row in conn.execute(pick)]
        if not ids:
            return []
        rows = conn.execute(
            jobs.update()
            .where(jobs.c.id.in_(ids))
            .values(
                state="running",
                attempts=jobs.c.attempts + 1,
                locked_by=worker,
                locked_until=now + lease_us,
                updated_at=now,
            )
            .returning(
                jobs.c.id,
                jobs.c.kind,
                jobs.c.payload,
                jobs.c.attempts,
                jobs.c.max_attempts,
                jobs.c.run_at,
                jobs.c.locked_until,
            )
        ).all()
    claimed = [
        Job(
            id=int(r.id),
            kind=r.kind,
            payload=r.payload,
            attempts=int(r.attempts),
            max_attempts=int(r.max_attempts),
            run_at=int(r.run_at),
            locked_by=worker,
            locked_until=int(r.locked_until),
        )
        for r in rows
    ]
    return sorted(claimed, key=lambda j: (j.run_at, j.id))


ABANDONED = (
    "its last attempt never finished: the worker running it stopped (killed, crashed or lost "
    "the database) and its lease ran out"
)


def _fail_abandoned(
    conn: sa.Connection,
    lapsed: sa.ColumnElement[bool],
    kinds: tuple[str, ...] | None,
    now: int,
) -> None:
    """Mark `failed` the running jobs whose lease ran out on their last attempt: a job that
    kills its worker every time (out of memory, a crash in native code) would otherwise be
    claimed again forever, past its `max_attempts`."""
    stmt = jobs.update().where(lapsed, jobs.c.attempts >= jobs.c.max_attempts)
    if kinds is not None:
        stmt = stmt.where(jobs.c.kind.in_(kinds))
    conn.execute(
        stmt.values(
            state="failed",
            locked_by=None,
            locked_until=None,
            last_error=ABANDONED,
            updated_at=now,
            finished_at=now,
        )
    )


def _fence(job: Job) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.id == job.id,
        jobs.c.state == "running",
        jobs.c.locked_by == job.locked_by,
        jobs.c.attempts == job.attempts,
    )


def heartbeat(engine: sa.Engine, job: Job, lease_us: int = DEFAULT_LEASE_US) -> bool:
    """Extend the lease of a job still being worked on; False if the lease was lost."""
    now = now_us()
    with writing(engine) as conn:
        result = conn.execute(
            jobs.update().where(_fence(job)).values(locked_until=now + lease_us, updated_at=now)
        )
        return result.rowcount == 1


def finish(conn: sa.Connection, job: Job, *, now: int | None = None) -> bool:
    """Mark the job done in the caller's transaction; False if another worker owns it now."""
    now = now_us() if now is None else now
    result = conn.execute(
        jobs.update()
        .where(_fence(job))
        .values(state="done", locked_by=None, locked_until=None, updated_at=now, finished_at=now)
    )
    return result.rowcount == 1


def backoff_us(attempts: int, base_us: int = 5 * SECOND, cap_us: int = MAX_BACKOFF_US) -> int:
    """Delay before retry number `attempts` + 1: base * 2^(attempts - 1), capped."""
    return int(min(cap_us, base_us * 2 ** max(0, attempts - 1)))


def fail(engine: sa.Engine, job: Job, error: str, *, now: int | None = None) -> str:
    """Record a failed attempt: retry later with back-off, or `failed` after the last attempt.

    Returns the job's new state (or `lost` when another worker owns it now)."""
    now = now_us() if now is None else now
    state = "failed" if job.attempts >= job.max_attempts else "pending"
    with writing(engine) as conn:
        result = conn.execute(
            jobs.update()
            .where(_fence(job))
            .values(
                state=state,
                locked_by=None,
                locked_until=None,
                last_error=error[:4000],
                run_at=now + backoff_us(job.attempts) if state == "pending" else job.run_at,
                updated_at=now,
                finished_at=now if state == "failed" else None,
            )
        )
    return state if result.rowcount == 1 else "lost"


def retry(engine: sa.Engine, job_id: int, *, now: int | None = None) -> bool:
    """Put a failed job back in the queue now (an operator's manual retry)."""
    now = now_us() if now is None else now
    with writing(engine) as conn:
        result = conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.state == "failed")
            .values(state="pending", run_at=now, attempts=0, updated_at=now, finished_at=None)
        )
        return result.rowcount == 1


@dataclass(frozen=True)
class JobRow:
    """A job as listed by `talktime jobs`."""

    id: int
    kind: str
    state: str
    attempts: int
    max_attempts: int
    run_at: int
    locked_by: str | None
    locked_until: int | None
    last_error: str | None
    dedupe_key: str | None


def list_jobs(
    engine: sa.Engine, states: tuple[str, ...] = ("pending", "running", "failed"), limit: int = 100
) -> list[JobRow]:
    """Jobs in the given states, oldest due first."""
    stmt = (
        sa.select(
            jobs.c.id,
            jobs.c.kind,
            jobs.c.state,
            jobs.c.attempts,
            jobs.c.max_attempts,
            jobs.c.run_at,
            jobs.c.locked_by,
            jobs.c.locked_until,
            jobs.c.last_error,
            jobs.c.dedupe_key,
        )
        .where(jobs.c.state.in_(states))
        .order_by(jobs.c.run_at, jobs.c.id)
        .limit(limit)
    )
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return [JobRow(**row._mapping) for row in conn.execute(stmt)]


def counts(engine: sa.Engine, now: int | None = None) -> tuple[dict[str, int], int]:
    """Jobs per state, and the lag (microseconds) of the oldest due pending job (0 if none)."""
    now = now_us() if now is None else now
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        per_state = dict.fromkeys(STATES, 0)
        for state, n in conn.execute(
            sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
        ):
            per_state[state] = int(n)
        oldest = conn.execute(
            sa.select(sa.func.min(jobs.c.run_at)).where(
                jobs.c.state == "pending", jobs.c.run_at <= now
            )
        ).scalar()
    return per_state, 0 if oldest is None else max(0, now - int(oldest))
