"""Job handlers for the worker tests, loaded with `talktime worker --plugin ops_plugin`.

`test.record` appends "job-id worker" to a file (with "rendezvous", it then waits until another
worker has written a line, so a test can show that two workers share the queue); `test.slow`
writes "start", waits for a release file, then writes "done" — so a test can kill a worker in
the middle of a job.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from talktime.ops import jobs, registry


@registry.handler("test.record")
def record(ctx: registry.JobContext, job: jobs.Job) -> None:
    """Append one line per run; with "rendezvous", wait (at most 30 s) for another worker's line."""
    path = Path(job.payload["path"])
    with path.open("a") as out:
        out.write(f"{job.id} {ctx.worker}\n")
    if not job.payload.get("rendezvous"):
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = {line.split()[1] for line in path.read_text().splitlines()}
        if workers - {ctx.worker}:
            return
        time.sleep(0.02)


@registry.handler("test.slow")
def slow(ctx: registry.JobContext, job: jobs.Job) -> None:
    """Start, wait for the release file (at most 30 s), finish."""
    log = Path(job.payload["path"])
    with log.open("a") as out:
        out.write(f"start {job.id} {os.getpid()}\n")
    release = Path(job.payload["release"])
    deadline = time.monotonic() + 30
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with log.open("a") as out:
        out.write(f"done {job.id} {os.getpid()}\n")
