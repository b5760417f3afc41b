"""The worker loop: queue periodic tasks, claim due jobs, run them under a heartbeat, stop cleanly.

One worker runs one job at a time; run more processes (on any hosts) for more throughput. A stop
request (SIGTERM, Ctrl-C) lets the running job finish, then the loop returns.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from talktime.config import Settings
from talktime.ops import jobs, registry
from talktime.ops.clock import SECOND, now_us
from talktime.store.ops_tables import jobs as jobs_table
from talktime.store.writer import writing

log = logging.getLogger("talktime.worker")

OUTAGE_REPORT_EVERY_S = 60.0
"""While the database stays unavailable, the worker says so again this often (seconds)."""


def _reason(exc: sa.exc.OperationalError) -> str:
    """The driver's message on one line, without SQLAlchemy's SQL and background link."""
    text = " ".join(str(exc.orig if exc.orig is not None else exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


def default_name() -> str:
    """host:pid, unique per running worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Worker:
    """Runs queued and periodic jobs against one database."""

    engine: sa.Engine
    settings: Settings
    name: str = field(default_factory=default_name)
    lease_us: int = jobs.DEFAULT_LEASE_US
    poll_us: int = 1 * SECOND
    stop: threading.Event = field(default_factory=threading.Event)
    ran: int = 0
    monotonic: Callable[[], float] = time.monotonic
    _down_since: float | None = field(default=None, init=False, repr=False)
    _down_reported: float = field(default=0.0, init=False, repr=False)

    def schedule_periodic(self, now: int | None = None) -> int:
        """Queue each periodic task's job for the current slot; returns how many were new.

        When the next slot's job exists already, the clock was set back since it was queued,
        and the slots up to the old time are all taken: the current slot then gets one more
        job (dedupe key `periodic:<kind>:<slot>:clock-back`), so hold expiry, recharges and
        the cycle do not stop until the clock catches up again."""
        now = now_us() if now is None else now
        new = 0
        with writing(self.engine) as conn:
            taken: dict[str, tuple[registry.Periodic, int]] = {}
            for task in registry.PERIODIC.values():
                if task.kind not in registry.HANDLERS:
                    continue
                slot = now // task.interval_us
                if self._enqueue_slot(conn, task, slot, f"periodic:{task.kind}:{slot}", now):
                    new += 1
                else:
                    taken[f"periodic:{task.kind}:{slot + 1}"] = (task, slot)
            if taken:
                ahead = conn.execute(
                    sa.select(jobs_table.c.dedupe_key).where(
                        jobs_table.c.dedupe_key.in_(list(taken))
                    )
                ).scalars()
                for key in ahead:
                    task, slot = taken[key]
                    again = f"periodic:{task.kind}:{slot}:clock-back"
                    new += self._enqueue_slot(conn, task, slot, again, now)
        return new

    @staticmethod
    def _enqueue_slot(
        conn: sa.Connection, task: registry.Periodic, slot: int, key: str, now: int
    ) -> bool:
        job_id = jobs.enqueue(
            conn,
            task.kind,
            {"slot": slot},
            run_at=slot * task.interval_us,
            dedupe_key=key,
            max_attempts=3,
            now=now,
        )
        return job_id is not None

    def run_job(self, job: jobs.Job) -> str:
        """Run one claimed job; returns `done`, `pending` (will retry), `failed` or `lost`."""
        fn = registry.HANDLERS.get(job.kind)
        if fn is None:
            reason = registry.UNAVAILABLE.get(job.kind, "not registered in this worker")
            return jobs.fail(self.engine, job, f"no handler for job kind {job.kind!r}: {reason}")
        beating = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, beating), daemon=True)
        beat.start()
        try:
            fn(registry.JobContext(self.engine, self.settings, self.name, now_us), job)
        except Exception as exc:
            log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
            detail = "".join(traceback.format_exception_only(exc)).strip()
            return jobs.fail(self.engine, job, detail)
        finally:
            beating.set()
            beat.join()
        with writing(self.engine) as conn:
            if jobs.finish(conn, job):
                return "done"
        log.warning("job %s (%s): lease lost before it finished", job.id, job.kind)
        return "lost"

    def _heartbeat(self, job: jobs.Job, done: threading.Event) -> None:
        """Renew the job's lease every third of it until `done`; a renewal the database refuses
        (locked, restarting) is tried again at the next beat instead of ending the thread."""
        while not done.wait(self.lease_us / SECOND / 3):
            try:
                renewed = jobs.heartbeat(self.engine, job, self.lease_us)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("job %s: could not renew its lease, will retry: %s", job.id, exc)
                continue
            if not renewed:
                log.warning("job %s: lease taken over by another worker", job.id)
                return

    def run_once(self) -> int:
        """Queue periodic tasks, then claim and run due jobs until none is due or a stop is asked.

        Returns how many jobs ran."""
        self.schedule_periodic()
        for tick in registry.TICKS.values():
            try:
                tick.fn(self.engine, self.name, now_us())
            except sa.exc.OperationalError:
                raise
            except Exception:
                log.exception("%s failed", tick.name)
        ran = 0
        while not self.stop.is_set():
            claimed = jobs.claim(self.engine, self.name, limit=1, lease_us=self.lease_us)
            if not claimed:
                break
            for job in claimed:
                state = self.run_job(job)
                log.info("job %s %s -> %s", job.id, job.kind, state)
                ran += 1
        self.ran += ran
        return ran

    def run(self, exit_when_idle: bool = False) -> None:
        """Loop until `stop` is set (or, with `exit_when_idle`, until nothing is due)."""
        log.info("worker %s started", self.name)
        while not self.stop.is_set():
            try:
                ran = self.run_once()
            except sa.exc.OperationalError as exc:
                self._database_down(exc)
                ran = 0
            else:
                self._database_up()
            if exit_when_idle and ran == 0:
                break
            if ran == 0:
                self.stop.wait(self.poll_us / SECOND)
        log.info("worker %s stopped after %d jobs", self.name, self.ran)

    def _database_down(self, exc: sa.exc.OperationalError) -> None:
        """Say once that the database stopped answering, then again every
        `OUTAGE_REPORT_EVERY_S` while it stays down (not on every poll)."""
        now = self.monotonic()
        if self._down_since is None:
            self._down_since = self._down_reported = now
            log.warning(
                "database unavailable, retrying every %g s: %s", self.poll_us / SECOND, _reason(exc)
            )
        elif now - self._down_reported >= OUTAGE_REPORT_EVERY_S:
            self._down_reported = now
            log.warning(
                "database still unavailable after %.0f s, retrying: %s",
                now - self._down_since,
                _reason(exc),
            )

    def _database_up(self) -> None:
        """Say that the database answers again after an outage."""
        if self._down_since is not None:
            log.warning(
                "database available again after %.0f s", self.monotonic() - self._down_since
            )
            self._down_since = None
