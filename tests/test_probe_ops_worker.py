"""The worker found wanting by probing: a job that kills its worker every time, a heartbeat the
database refuses once, a stop signal with a broken stderr, and starting on an unmigrated
database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from clikit import talktime_main
from talktime.config import Settings
from talktime.ops import jobs, registry
from talktime.ops.clock import SECOND, now_us
from talktime.ops.worker import Worker
from talktime.store import make_engine

from ops_helpers import TESTS

TALKTIME = str(Path(sys.executable).with_name("talktime"))


def test_a_job_whose_worker_dies_on_every_attempt_fails_after_its_last_one(
    engine: sa.Engine,
) -> None:
    # a job that kills its worker (out of memory, a crash in native code) was claimed again
    # each time its lease ran out, forever: attempts 6/3, 7/3, ... and never `failed`
    with engine.begin() as conn:
        job_id = jobs.enqueue(conn, "test.poison", max_attempts=3, now=0)
    now = 0
    for attempt in (1, 2, 3):
        [job] = jobs.claim(engine, f"doomed-{attempt}", now=now, lease_us=10 * SECOND)
        assert (job.id, job.attempts) == (job_id, attempt)
        now += 11 * SECOND  # the worker died: its lease runs out
    assert jobs.claim(engine, "next", now=now, lease_us=10 * SECOND) == []
    [row] = jobs.list_jobs(engine, jobs.STATES)
    assert (row.state, row.attempts, row.locked_by) == ("failed", 3, None)
    assert row.last_error is not None
    assert "never finished" in row.last_error
    # an operator's retry gives it its attempts back
    assert jobs.retry(engine, job_id)
    [again] = jobs.claim(engine, "next", now=now_us(), lease_us=10 * SECOND)
    assert again.attempts == 1


def test_a_lapsed_job_with_attempts_left_is_still_taken_over(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        jobs.enqueue(conn, "test.poison", max_attempts=3, now=0)
    jobs.claim(engine, "dead", now=0, lease_us=10 * SECOND)
    [job] = jobs.claim(engine, "alive", now=11 * SECOND, lease_us=10 * SECOND)
    assert job.attempts == 2
    assert [r.state for r in jobs.list_jobs(engine, jobs.STATES)] == ["running"]


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_lease_renewal_the_database_refuses_is_tried_again_and_the_job_kept(
    db_url: str, engine: sa.Engine
) -> None:
    # SQLite answers "database is locked" once its busy timeout runs out while another process
    # writes: the heartbeat thread died on it, the lease ran out mid-job, and another worker
    # could take the job and run it a second time beside the first
    path = make_url(db_url).database
    assert path is not None
    settings = Settings(database_url=db_url, sqlite_busy_timeout_ms=50)
    quick = make_engine(db_url, settings)
    stolen: list[jobs.Job] = []
    crashes: list[BaseException | None] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: crashes.append(args.exc_value)

    def hold_the_lock_then_try_to_steal(ctx: registry.JobContext, job: jobs.Job) -> None:
        blocker = sqlite3.connect(path, isolation_level=None)
        time.sleep(0.2)
        blocker.execute("BEGIN IMMEDIATE")  # held over the first renewal at 1 s
        time.sleep(1.3)
        blocker.execute("COMMIT")
        blocker.close()
        time.sleep(2.0)  # renewed at 2 s (lease to 5 s); without it the lease ended at 3 s
        stolen.extend(jobs.claim(ctx.engine, "other", lease_us=3 * SECOND))

    registry.handler("test.locked")(hold_the_lock_then_try_to_steal)
    try:
        with engine.begin() as conn:
            jobs.enqueue(conn, "test.locked")
        worker = Worker(quick, settings, name="w", lease_us=3 * SECOND)
        [job] = jobs.claim(quick, "w", lease_us=3 * SECOND, kinds=("test.locked",))
        assert worker.run_job(job) == "done"
    finally:
        threading.excepthook = hook
        registry.HANDLERS.pop("test.locked")
        quick.dispose()
    assert crashes == []
    assert stolen == []


def _worker(db_url: str, stderr: int) -> subprocess.Popen[bytes]:
    environ = {
        **os.environ,
        "TALKTIME_DATABASE_URL": db_url,
        "TALKTIME_CONFIG": "",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [TALKTIME, "worker", "--poll-seconds", "0.05"]
    return subprocess.Popen(cmd, env=environ, stdout=subprocess.DEVNULL, stderr=stderr)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_worker_whose_stderr_reader_went_away_still_stops_on_sigterm(db_url: str) -> None:
    # the signal watcher printed "finishing the current job" before setting the stop: with the
    # terminal or log pipe gone the print raised, the thread died and SIGTERM was ignored
    read_end, write_end = os.pipe()
    proc = _worker(db_url, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        while b" started" not in reader.readline():
            pass
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=20) in (0, -signal.SIGPIPE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("args", [["worker"], ["worker", "--once"], ["run", "--port", "0"]])
def test_the_worker_and_run_refuse_an_unmigrated_database(
    monkeypatch: pytest.MonkeyPatch, unmigrated_url: str, args: list[str]
) -> None:
    # the worker logged "database unavailable, retrying" with the failed SQL every second
    # (SQLite) and `talktime run` served every request a 500 beside it
    done = talktime_main(
        monkeypatch,
        *args,
        TALKTIME_DATABASE_URL=unmigrated_url,
        TALKTIME_CONFIG="",
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error[database_not_migrated]: "), done.stderr
    assert "talktime db upgrade" in done.stderr


def test_periodic_work_goes_on_after_the_clock_is_set_back(engine: sa.Engine) -> None:
    # every slot up to the old time already had its job: after the clock was set back an hour
    # no hold expiry, recharge or cycle ran for an hour
    registry.handler("test.tick")(lambda ctx, job: None)
    registry.periodic("test.tick", 60 * SECOND, "test")
    try:
        worker = Worker(engine, Settings(database_url=str(engine.url)), name="w")
        start = 1_800_000_000 * SECOND

        def ran(now: int) -> int:
            worker.schedule_periodic(now=now)
            done = 0
            for job in jobs.claim(engine, "w", limit=100, now=now, kinds=("test.tick",)):
                with engine.begin() as conn:
                    done += jobs.finish(conn, job, now=now)
            return done

        assert sum(ran(start + minute * 60 * SECOND) for minute in range(60)) == 60
        back = start + 30 * SECOND  # the clock is set back by an hour
        assert ran(back) == 1
        assert ran(back + 10 * SECOND) == 0, "still once per slot"
        assert ran(back + 60 * SECOND) == 1
        caught_up = start + 61 * 60 * SECOND
        assert ran(caught_up) == 1
        assert ran(caught_up + 10 * SECOND) == 0
    finally:
        registry.PERIODIC.pop("test.tick")
        registry.HANDLERS.pop("test.tick")


def test_a_database_outage_is_logged_when_it_starts_once_a_minute_and_when_it_ends(
    engine: sa.Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the worker logged a three-line warning (the SQL and SQLAlchemy's background link) on
    # every poll of an outage, once a second, and nothing when the database answered again
    unreachable = make_engine(f"sqlite:///{tmp_path}/no-such-dir/talktime.db")
    readings = iter(range(0, 10_000, 20))  # the worker's clock moves 20 s a reading
    worker = Worker(
        unreachable,
        Settings(database_url=str(engine.url)),
        name="w",
        poll_us=1,
        monotonic=lambda: float(next(readings)),
    )
    polls = 0
    run_once = worker.run_once

    def poll() -> int:
        nonlocal polls
        polls += 1
        if polls == 8:  # the database is back; stop after this poll
            worker.engine = engine
            worker.stop.set()
        return run_once()

    worker.run_once = poll  # type: ignore[method-assign]
    with caplog.at_level("INFO", logger="talktime.worker"):
        worker.run()
    said = [r.getMessage() for r in caplog.records if "database" in r.getMessage()]
    assert said == [
        "database unavailable, retrying every 1e-06 s: unable to open database file",
        "database still unavailable after 60 s, retrying: unable to open database file",
        "database still unavailable after 120 s, retrying: unable to open database file",
        "database available again after 140 s",
    ]
    unreachable.dispose()
