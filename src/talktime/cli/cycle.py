"""Cycle commands: `talktime cycle run` closes every ended billing period and opens the next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from talktime import money
from talktime.cli.app import app, console, err_console, fail, open_engine, print_json
from talktime.config import get_settings

cycle_app = typer.Typer(help="The monthly cycle: free credit, expiry and number rentals.")
app.add_typer(cycle_app, name="cycle")


def parse_now(text: str | None) -> datetime | None:
    """An ISO 8601 instant (a bare date or a time without zone is taken as UTC), or None;
    raises ValueError when it is not one, and refuses (`invalid_time`) one outside the range
    the wallet accepts."""
    from talktime.wallet.inputs import EARLIEST, LATEST

    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment < LATEST:
        fail("invalid_time", f"--now {text!r} is out of range: give a time from 1970 to 8999")
    return moment


MONEY_FIELDS = ("expired", "granted", "rentals_charged")
"""The amounts of a cycle run (micro-units inside), printed as decimal strings."""


def _run_dict(run: dict[str, Any]) -> dict[str, Any]:
    """A cycle run as JSON data, its amounts as decimal strings as everywhere at the edges."""
    return {k: money.format(v) if k in MONEY_FIELDS else v for k, v in run.items()}


MAX_MONTHS_AHEAD = 12
"""How far `--now` may be past the latest end of any account's period (a year of periods)."""

EXIT_BEHIND = 3
"""Exit status of a run that stopped at its bound with accounts still behind: run again."""


def check_plausible(at: datetime, text: str, latest_end: datetime | None) -> None:
    """Refuse (`implausible_time`) a ``--now`` more than a year after ``latest_end``, the
    latest end of any account's period: it would bill months that have not happened."""
    from talktime.wallet.periods import add_months

    if latest_end is not None and at > add_months(latest_end, MAX_MONTHS_AHEAD):
        fail(
            "implausible_time",
            f"--now {text!r} is more than a year after the latest end of any account's billing "
            f"period ({latest_end:%Y-%m-%d}), so the cycle would bill months that have not "
            "happened; check the date (to catch up after a longer outage, leave --now out to use "
            "the current time, or move --now on a year at a time)",
        )


@cycle_app.command("run")
def run(
    now: Annotated[
        str | None,
        typer.Option(
            help="Act as if it were this ISO 8601 time (default: now), e.g. 2026-04-01; refused "
            "(implausible_time) more than a year after the latest end of any account's period."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Expire last period's free credit, issue the new one and charge number rentals, for
    every account whose period ended (catching up period by period). Safe to run again.

    One run opens at most MAX_PERIODS_PER_RUN (240) periods per account; an account still
    behind after that is named on stderr and the run exits 3: run it again to go on. Exits 1
    when an account could not be advanced."""
    from talktime.service import cards
    from talktime.wallet.cycle import CycleBehind, CycleFailure, latest_period_end, run_cycle
    from talktime.wallet.model import to_dict

    try:
        at = parse_now(now)
    except ValueError:
        fail("invalid_time", f"--now {now!r} is not an ISO 8601 time such as 2026-04-01T00:00:00Z")
    settings = get_settings()
    engine = open_engine(settings)
    failures: list[CycleFailure] = []
    behind: list[CycleBehind] = []
    try:
        if at is not None:
            with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
                check_plausible(at, str(now), latest_period_end(conn))
        runs = run_cycle(
            engine, at, failures, behind=behind, plan_credit=cards.plan_credit(settings)
        )
    finally:
        engine.dispose()
    for f in failures:
        err_console.print(
            Text(f"account {f.account_id} not advanced ({f.code}): {f.detail}"),
            highlight=False,
        )
    for b in behind:
        err_console.print(
            f"account {b.account_id} still behind: its period {b.period_start:%Y-%m-%d} to "
            f"{b.period_end:%Y-%m-%d} has ended too; run `talktime cycle run` again to go on",
            highlight=False,
        )
    if as_json:
        print_json([_run_dict(to_dict(r)) for r in runs])
    if failures:
        raise typer.Exit(1)
    if as_json:
        if behind:
            raise typer.Exit(EXIT_BEHIND)
        return
    for r in runs:
        suspended = f", suspended {', '.join(r.numbers_suspended)}" if r.numbers_suspended else ""
        console.print(
            f"account {r.account_id}: period {r.period_start:%Y-%m-%d} to {r.period_end:%Y-%m-%d}"
            f" expired {money.format(r.expired)}, granted {money.format(r.granted)}, rentals "
            f"{money.format(r.rentals_charged)}{suspended}",
            highlight=False,
        )
    left = f"; {len(behind)} account(s) still behind: run again" if behind else ""
    console.print(f"{len(runs)} period(s) opened{left}", highlight=False)
    if behind:
        raise typer.Exit(EXIT_BEHIND)
