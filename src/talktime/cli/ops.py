"""Operations commands: `talktime worker`, `talktime jobs`, and `talktime run` (API + worker)."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from talktime.cli.accounts import require_id
from talktime.cli.app import app, console, err_console, fail, open_engine, print_json, revisions
from talktime.config import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from talktime.ops.statements import Statement


MIN_LEASE_SECONDS = 0.1
MAX_LEASE_SECONDS = 86_400.0
"""A job's lease is renewed every third of it while the job runs, so it only has to outlast a
stalled heartbeat; it is also how long a crashed worker's job waits to be taken over. A day is
plenty for the one and the longest sensible wait for the other, and keeps every lease end a
valid timestamp on both backends."""
MIN_POLL_SECONDS = 0.01
MAX_POLL_SECONDS = 3600.0
"""How long an idle worker sleeps between passes (a longer sleep delays periodic jobs)."""


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Run what is due now, then exit.")] = False,
    exit_when_idle: Annotated[
        bool, typer.Option(help="Exit as soon as a pass finds nothing due.")
    ] = False,
    lease_seconds: Annotated[
        float,
        typer.Option(
            help="Lease of a claimed job, 0.1 to 86400 s; renewed while it runs.",
        ),
    ] = 60.0,
    poll_seconds: Annotated[float, typer.Option(help="Sleep when idle, 0.01 to 3600 s.")] = 1.0,
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

    if not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS:  # also refuses nan
        fail(
            "invalid_lease",
            f"--lease-seconds must be a number from {MIN_LEASE_SECONDS:g} to "
            f"{MAX_LEASE_SECONDS:g} (one day), not {lease_seconds:g}",
        )
    if not MIN_POLL_SECONDS <= poll_seconds <= MAX_POLL_SECONDS:  # also refuses nan
        fail(
            "invalid_poll",
            f"--poll-seconds must be a number from {MIN_POLL_SECONDS:g} to "
            f"{MAX_POLL_SECONDS:g} (an hour), not {poll_seconds:g}",
        )
    for module in plugin or []:
        _import_plugin(module)
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
    engine = open_engine(settings)
    _require_migrated(engine)
    runner = Worker(
        engine, settings, lease_us=int(lease_seconds * SECOND), poll_us=int(poll_seconds * SECOND)
    )

    _stop_on_signals(runner.stop)
    for kind, reason in registry.UNAVAILABLE.items():
        err_console.print(
            f"worker: [yellow]{escape(kind)} will not run[/]: {escape(str(reason))}",
            highlight=False,
        )
    try:
        if once:
            runner.run_once()
        else:
            runner.run(exit_when_idle=exit_when_idle)
    finally:
        # Stopping: a stop signal still on its way (Ctrl-C under `talktime run` sends two)
        # must not kill the exit. The interpreter's shutdown puts the default action back for
        # signals that have a Python handler, but leaves SIG_IGN alone: without this, a
        # SIGTERM landing then ended the worker with -15 after a clean stop.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        engine.dispose()


def _require_migrated(engine: Engine) -> None:
    """Refuse to start on a database that is not at this version's migration (the worker would
    otherwise log a failed query every second, and the API answer every request with 503). A
    database that does not answer yet is left to the worker's retry loop."""
    import sqlalchemy as sa

    from talktime.store.migrate import NOT_MIGRATED

    try:
        current, head = revisions(engine)  # `database_newer` when a newer talktime migrated it
    except sa.exc.OperationalError:
        return
    if current != head:
        fail(
            "database_not_migrated",
            f"{NOT_MIGRATED} (the database is at revision {current or 'none'}; this version "
            f"needs {head})",
        )


def _import_plugin(module: str) -> None:
    """Import a `--plugin` module, refusing with its name when it cannot be found or imported
    (an error raised by the plugin's own code still shows its traceback)."""
    if not all(part.isidentifier() for part in module.split(".")):
        fail("plugin_not_found", f"--plugin {module!r} is not a module name such as my.jobs")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module + ".").startswith(exc.name + "."):
            fail(
                "plugin_not_found",
                f"--plugin {module!r}: there is no module {exc.name!r}; check the name, and "
                "that it is installed or on PYTHONPATH",
            )
        fail("plugin_import_failed", f"--plugin {module!r} could not be imported: {exc}")
    except ImportError as exc:
        fail("plugin_import_failed", f"--plugin {module!r} could not be imported: {exc}")


def _stop_on_signals(stop: threading.Event) -> None:
    """Set ``stop`` on the first SIGTERM or SIGINT, saying so once; later ones are ignored.

    The Python-level handler does nothing at all: a handler runs in the main thread between
    any two bytecodes, possibly while that thread holds the lock of ``stop`` (inside
    `Event.wait`), so calling `stop.set()` or printing there can deadlock; and Ctrl-C under
    `talktime run` arrives twice (the terminal's SIGINT and the forwarded SIGTERM). Instead
    the interpreter's C-level handler writes the signal number to a pipe
    (`signal.set_wakeup_fd`), and a watcher thread that reads it sets ``stop`` and prints,
    outside any handler.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd requires it; a full pipe drops bytes

    def watch() -> None:
        signum = os.read(read_end, 1)[0]
        # Say so before the stop (once stopped, the process may exit before a later print), but
        # stop whatever saying so does: a closed terminal or a broken stderr pipe raises.
        try:
            with contextlib.suppress(OSError, ValueError):
                # through logging, so `log_format = "json"` keeps stderr one object per line
                # (a bare line here broke it); at warning level, so it shows at any level
                logging.getLogger("talktime.worker").warning(
                    "worker: %s, finishing the current job", signal.Signals(signum).name
                )
        finally:
            stop.set()

    threading.Thread(target=watch, name="stop-signals", daemon=True).start()
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _ignore_signal)


def _ignore_signal(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler of `_stop_on_signals` (its watcher thread does the work)."""


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

    if retry is not None:
        require_id(retry, "job id")
        if state:
            fail("invalid_request", "--retry queues one job again: give it without --state")
    settings = get_settings()
    engine = open_engine(settings)
    try:
        if retry is not None:
            if not jobs.retry(engine, retry):
                fail("job_not_failed", f"job {retry} does not exist or has not failed")
            if as_json:
                print_json({"id": retry, "state": "pending"})
            else:
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
    # id, kind, state and attempts stay whole; the time wraps between date and time of day
    # (to the second, UTC; --json has it exact); worker and error text fold
    table = Table(
        Column("id", no_wrap=True),
        Column("kind", no_wrap=True),
        Column("state", no_wrap=True),
        Column("tries", no_wrap=True),
        Column("run at (UTC)", min_width=10),
        Column("worker", overflow="fold", min_width=6),
        Column("last error", overflow="fold", min_width=10),
    )
    for r in rows:
        table.add_row(  # Text: an error message is shown as written, never read as markup
            str(r.id),
            Text(r.kind),
            r.state,
            f"{r.attempts}/{r.max_attempts}",
            (iso(r.run_at) or "")[:19].replace("T", " "),
            Text(r.locked_by or ""),
            Text((r.last_error or "")[:80]),
        )
    console.print(table)
    if not rows:
        console.print("no jobs in states " + ", ".join(states))


@app.command("run")
def run(
    host: Annotated[str | None, typer.Option(help="Listen address (default: settings).")] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Listen port, 0 to 65535 (default: settings)."),
    ] = None,
) -> None:
    """Serve the API and run one worker beside it; Ctrl-C (or SIGTERM) stops both."""
    import uvicorn

    from talktime import logs

    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level)
    engine = open_engine(settings)
    try:
        _require_migrated(engine)
    finally:
        engine.dispose()
    child = subprocess.Popen([sys.executable, "-m", "talktime", "worker"])

    def _forward(signum: int, _frame: FrameType | None) -> None:
        # uvicorn restores these handlers after its graceful shutdown and re-raises the signal
        # it caught: pass it on to the worker instead of dying before the worker has stopped.
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    try:
        uvicorn.run(
            "talktime.api.app:create_served_app",
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


def _when(text: str | None) -> int | None:
    """An ISO date or date-time (UTC when no offset is given) as epoch microseconds."""
    from talktime.ops.clock import from_datetime, parse_iso

    if text is None:
        return None
    try:
        moment = parse_iso(text)
    except ValueError:
        fail("invalid_time", f"{text!r} is not an ISO date or date-time such as 2026-10-01")
    return from_datetime(moment)


@app.command("usage")
def usage_report(
    account: Annotated[int, typer.Argument(help="Account id.")],
    since: Annotated[
        str | None, typer.Option(help="Start (ISO), default: start of the month --until falls in.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End (ISO, exclusive), default: now.")] = None,
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            "--group-by",
            help="day, channel, direction, country, number_type, user, phone_number (repeat).",
        ),
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Usage counts and totals of an account over a time range, grouped as asked."""

    from talktime.errors import TalktimeError
    from talktime.ops import usage
    from talktime.ops.clock import now_us

    if as_csv and as_json:  # one output format: neither is silently dropped
        fail("invalid_request", "give --csv or --json, not both")
    require_id(account, "account id")
    start, end = usage.default_range(now_us(), _when(since), _when(until))
    dims = [d for part in group_by or [] for d in part.split(",") if d]
    settings = get_settings()
    engine = open_engine(settings)
    try:
        groups = usage.usage(engine, account, start, end, dims)
        if as_json:  # the API's report: currency, range and grouping beside the rows
            print_json(usage.report(engine, account, start, end, groups, dims))
            return
    except TalktimeError as refusal:
        fail(refusal.code, refusal.detail)
    finally:
        engine.dispose()
    if as_csv:
        sys.stdout.write(usage.to_csv(groups, dims))
        return
    rows = usage.to_dicts(groups, dims)
    table = Table(*dims, "count", "quantity", "amount")
    for row in rows:
        table.add_row(
            *(Text(str(row[d] or "")) for d in dims),
            str(row["count"]),
            str(row["quantity"]),
            row["amount"],
        )
    console.print(table)


@app.command("statement")
def statement_command(
    account: Annotated[int, typer.Argument(help="Account id.")],
    period: Annotated[str, typer.Argument(help="Month, YYYY-MM (UTC).")],
    output_format: Annotated[
        str, typer.Option("--format", help="text, json, csv or pdf.")
    ] = "text",
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file, or '-' for standard output (default for pdf: "
            "statement-ACCOUNT-PERIOD.pdf).",
        ),
    ] = None,
) -> None:
    """An account's monthly statement: opening, credit, usage, expiries, refunds, closing."""
    from talktime.errors import TalktimeError
    from talktime.ops import pdf, statements

    if output_format not in ("text", "json", "csv", "pdf"):
        fail("invalid_format", f"--format must be text, json, csv or pdf, not {output_format!r}")
    require_id(account, "account id")
    settings = get_settings()
    engine = open_engine(settings)
    try:
        stmt = statements.statement(engine, account, period)
    except TalktimeError as refusal:
        fail(refusal.code, refusal.detail)
    finally:
        engine.dispose()
    if output_format == "pdf" and output == "-":
        sys.stdout.buffer.write(pdf.render(stmt))
        sys.stdout.flush()
        return
    if output == "-":
        output = None  # the text, JSON or CSV to standard output, as without --output
    if output_format == "pdf":
        path = Path(output or f"statement-{account}-{period}.pdf")
        _write(path, pdf.render(stmt))
        console.print(Text(f"wrote {path}"), highlight=False)
        return
    if output_format == "text":
        # Amounts are never cut off: they keep one line each while they fit beside a label
        # column of a few characters (the labels wrap), else they fold onto more lines.
        bare = Measurement.get(
            console, console.options.update_width(10_000), _statement_table(stmt, labels=False)
        )
        fold = bare.maximum + _LABEL_ROOM > console.width
        table = _statement_table(stmt, fold_amounts=fold)
        if output is None:
            console.print(table)
            return
        plain = Console(file=io.StringIO(), width=console.width, color_system=None)
        plain.print(table)
        text = plain.file.getvalue()  # type: ignore[attr-defined]
    else:
        import json

        text = (
            stmt.to_csv() if output_format == "csv" else json.dumps(stmt.to_dict(), indent=2) + "\n"
        )
    if output:
        _write(Path(output), text.encode())
        console.print(Text(f"wrote {output}"), highlight=False)
    else:
        sys.stdout.write(text)


_LABEL_ROOM = 5
"""Columns a statement's labels get at the least before its amounts fold instead."""


def _statement_table(stmt: Statement, *, labels: bool = True, fold_amounts: bool = False) -> Table:
    """The statement as a rich table; amounts whole on one line unless `fold_amounts`, and
    the labels left empty unless `labels` (to measure how wide the amounts alone are)."""
    from talktime import money

    f = money.format
    table = Table(title=Text(f"{stmt.account_name} {stmt.period} ({stmt.currency})"))
    table.add_column("", overflow="fold")
    for head in ("free", "paid", "total"):
        table.add_column(head, justify="right", no_wrap=not fold_amounts, overflow="fold")
    rows = [("Opening balance", stmt.opening_free, stmt.opening_paid)]
    rows += [(f"  {line.label} ({line.entries})", line.free, line.paid) for line in stmt.lines]
    rows.append(("Closing balance", stmt.closing_free, stmt.closing_paid))
    if stmt.uncollected:  # apart from the balance, as in the CSV, JSON and PDF
        rows.append(("Uncollected (not covered by credit)", 0, stmt.uncollected))
    for label, free, paid in rows:
        table.add_row(label if labels else "", f(free), f(paid), f(free + paid))
    return table


def _write(path: Path, data: bytes) -> None:
    """Write `data` to `path`, refusing with the path and the reason when that fails."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        fail(
            "output_not_writable",
            f"cannot write {str(path)!r}: {exc.strerror or exc}; give a path in an existing "
            "directory you can write to",
        )
