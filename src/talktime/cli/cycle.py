"""Cycle commands: `talktime cycle run` closes every ended billing period and opens the next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from talktime import money
from talktime.cli.app import app, console, err_console, fail, print_json
from talktime.config import get_settings

cycle_app = typer.Typer(help="The monthly cycle: free credit, expiry and number rentals.")
app.add_typer(cycle_app, name="cycle")


def parse_now(text: str | None) -> datetime | None:
    """An ISO 8601 instant (a bare date or a time without zone is taken as UTC), or None."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cycle_app.command("run")
def run(
    now: Annotated[
        str | None,
        typer.Option(help="Act as if it were this ISO 8601 time (default: now), e.g. 2026-04-01"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Expire last period's free credit, issue the new one and charge number rentals, for
    every account whose period ended (catching up period by period). Safe to run again."""
    from talktime.store import make_engine
    from talktime.wallet.cycle import CycleFailure, run_cycle
    from talktime.wallet.model import to_dict

    try:
        at = parse_now(now)
    except ValueError:
        fail("invalid_time", f"--now {now!r} is not an ISO 8601 time such as 2026-04-01T00:00:00Z")
    settings = get_settings()
    engine = make_engine(settings.database_url, settings)
    failures: list[CycleFailure] = []
    try:
        runs = run_cycle(engine, at, failures)
    finally:
        engine.dispose()
    for f in failures:
        err_console.print(
            f"account {f.account_id} not advanced ({f.code}): {f.detail}", highlight=False
        )
    if as_json:
        print_json([to_dict(r) for r in runs])
    if failures:
        raise typer.Exit(1)
    if as_json:
        return
    for r in runs:
        suspended = f", suspended {', '.join(r.numbers_suspended)}" if r.numbers_suspended else ""
        console.print(
            f"account {r.account_id}: period {r.period_start:%Y-%m-%d} to {r.period_end:%Y-%m-%d}"
            f" expired {money.format(r.expired)}, granted {money.format(r.granted)}, rentals "
            f"{money.format(r.rentals_charged)}{suspended}",
            highlight=False,
        )
    console.print(f"{len(runs)} period(s) opened", highlight=False)
