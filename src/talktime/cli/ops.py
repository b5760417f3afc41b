"""Operations commands: `talktime worker`, `talktime jobs`, and `talktime run` (API + worker)."""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from talktime.cli.app import app, console, err_console, fail, print_json
from talktime.config import get_settings


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Run what is due now, then exit.")] = False,
    exit_when_idle: Annotated[
        bool, typer.Option(help="Exit as soon as a pass finds nothing due.")
    ] = False,
    lease_seconds: Annotated[
        float, typer.Option(min=0.1, help="Lease of a claimed job; renewed while it runs.")
    ] = 60.0,
    poll_seconds: Annotated[float, typer.Option(min=0.01, help="Sleep when idle.")] = 1.0,
    plugin: Annotated[
        list[str] | None,
        typer.Option(help="Import this module first (it may register more job handlers)."),
    ] = None,
    list_kinds: Annotated[
        bool, typer.Option("--list", help="List the job kinds this worker runs, then exit.")
    ] = False,
) -> None:
    """Run queued and periodic jobs (hold expiry, monthly cycle, auto-recharges, webhooks).

    Run as many workers as you like, on any hosts: a job is claimed by one of them. SIGTERM or
    Ctrl-C lets the running job finish, then exits."""
    from talktime import logs
    from talktime.ops import registry, tasks  # noqa: F401 - registers the built-in tasks
    from talktime.ops.clock import SECOND
    from talktime.ops.worker import Worker
    from talktime.store import make_engine

    for module in plugin or []:
        importlib.import_module(module)
    if list_kinds:
        table = Table("kind", "runs", "every", "what / why not")
        for item in registry.describe():
            every = item["every_seconds"]
            table.add_row(
                item["kind"],
                "yes" if item["available"] else "[red]no[/]",
                "" if every is None else f"{every}" if isinstance(every, str) else f"{every:g} s",
                item["description"] if item["available"] else str(item["missing"]),
            )
        console.print(table)
        return
    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level)
    engine = make_engine(settings.database_url, settings)
    runner = Worker(
        engine, settings, lease_us=int(lease_seconds * SECOND), poll_us=int(poll_seconds * SECOND)
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        err_console.print(f"worker: {signal.Signals(signum).name}, finishing the current job")
        runner.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for kind, reason in registry.UNAVAILABLE.items():
        err_console.print(f"worker: [yellow]{kind} will not run[/]: {reason}", highlight=False)
    try:
        if once:
            runner.run_once()
        else:
            runner.run(exit_when_idle=exit_when_idle)
    finally:
        engine.dispose()


@app.command("jobs")
def list_jobs(
    state: Annotated[
        list[str] | None,
        typer.Option(help="Only these states (pending, running, done, failed)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    retry: Annotated[
        int | None, typer.Option(help="Put this failed job back in the queue.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List pending, running and failed jobs (oldest due first)."""
    from talktime.ops import jobs
    from talktime.ops.clock import iso
    from talktime.store import make_engine

    settings = get_settings()
    engine = make_engine(settings.database_url, settings)
    try:
        if retry is not None:
            if not jobs.retry(engine, retry):
                fail("job_not_failed", f"job {retry} does not exist or has not failed")
            console.print(f"job {retry} queued again")
            return
        states = tuple(state or ("pending", "running", "failed"))
        bad = [s for s in states if s not in jobs.STATES]
        if bad:
            fail("invalid_state", f"unknown job state {bad[0]!r}; use {', '.join(jobs.STATES)}")
        rows = jobs.list_jobs(engine, states, limit)
    finally:
        engine.dispose()
    if as_json:
        print_json(
            [
                {**r.__dict__, "run_at": iso(r.run_at), "locked_until": iso(r.locked_until)}
                for r in rows
            ]
        )
        return
    table = Table("id", "kind", "state", "attempts", "run at", "worker", "last error")
    for r in rows:
        table.add_row(
            str(r.id),
            r.kind,
            r.state,
            f"{r.attempts}/{r.max_attempts}",
            iso(r.run_at) or "",
            r.locked_by or "",
            (r.last_error or "")[:80],
        )
    console.print(table)
    if not rows:
        console.print("no jobs in states " + ", ".join(states))


@app.command("run")
def run(
    host: Annotated[str | None, typer.Option(help="Listen address (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: settings).")] = None,
) -> None:
    """Serve the API and run one worker beside it; Ctrl-C (or SIGTERM) stops both."""
    import uvicorn

    from talktime import logs

    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level)
    child = subprocess.Popen([sys.executable, "-m", "talktime", "worker"])
    try:
        uvicorn.run(
            "talktime.api.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port if port is not None else settings.port,
            log_config=None,
        )
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
