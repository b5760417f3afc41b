"""The shared Typer app and helpers every command module uses."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="talktime",
    help="Prepaid usage billing for business calling and SMS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade and inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Print plain data as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fail(code: str, message: str, exit_code: int = 1) -> NoReturn:
    """Print a refusal as `error[code]: sentence` on stderr and exit non-zero (no traceback)."""
    # escape: rich would otherwise eat "[code]" as a markup tag and drop it from the output
    err_console.print(
        f"[bold red]{escape(f'error[{code}]')}[/]: {escape(message)}",
        highlight=False,
        markup=True,
        soft_wrap=True,  # one line, never broken mid-path: scripts and tests grep it
    )
    raise typer.Exit(exit_code)
