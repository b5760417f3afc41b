"""Recharge commands: `talktime recharge run` pays the due auto-recharges once (for cron)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from talktime.cli.app import app, console, fail, open_engine, print_json
from talktime.cli.cycle import parse_now
from talktime.config import get_settings

recharge_app = typer.Typer(help="Auto-recharge: pay the recharges that are due.")
app.add_typer(recharge_app, name="recharge")


@recharge_app.command("run")
def run(
    now: Annotated[
        str | None, typer.Option(help="Act as if it were this ISO 8601 time (default: now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcomes as JSON.")] = False,
) -> None:
    """Claim the due recharges, charge them through the configured payment provider and grant
    the credit of those paid. Safe to run from several places at once."""
    from talktime.wallet.model import to_dict
    from talktime.wallet.payments import provider_from_settings
    from talktime.wallet.recharge import process_recharges

    try:
        at = parse_now(now)
    except ValueError:
        fail("invalid_time", f"--now {now!r} is not an ISO 8601 time such as 2026-04-01T00:00:00Z")
    settings = get_settings()
    engine = open_engine(settings)
    try:
        outcomes = process_recharges(
            engine, provider_from_settings(settings), at, settings=settings
        )
    finally:
        engine.dispose()
    if as_json:
        print_json([to_dict(o) for o in outcomes])
        return
    for o in outcomes:
        reason = f" ({o.reason})" if o.reason else ""
        console.print(
            Text(f"account {o.account_id} recharge #{o.sequence}: {o.outcome}{reason}"),
            highlight=False,
        )
    console.print(f"{len(outcomes)} recharge(s) looked at", highlight=False)
