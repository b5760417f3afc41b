"""Wallet commands: `talktime verify` checks every wallet invariant over the whole database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from talktime.cli.app import (
    app,
    console,
    err_console,
    print_json,
    refuse_missing_database,
    refuse_newer_database,
)
from talktime.config import get_settings


@app.command()
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the breaches as JSON.")] = False,
) -> None:
    """Check every wallet invariant; exit 1 naming each account with a breach."""
    from talktime.wallet import Wallet

    settings = get_settings()
    refuse_missing_database(settings)
    wallet = Wallet.open(settings.database_url, settings=settings)
    refuse_newer_database(wallet.engine)
    try:
        breaches = wallet.verify()
    finally:
        wallet.close()
    if as_json:
        print_json(
            [{"account_id": b.account_id, "rule": b.rule, "detail": b.detail} for b in breaches]
        )
    elif breaches:
        for breach in breaches:
            err_console.print(f"[bold red]breach[/] {escape(str(breach))}", highlight=False)
    else:
        console.print("wallet verified: every invariant holds", highlight=False)
    if breaches:
        raise typer.Exit(1)
