"""The `talktime` command. Each submodule registers its commands on the shared Typer app."""

from __future__ import annotations

from talktime.cli import (
    accounts,  # noqa: F401 - registers `accounts create` and `keys create`
    core,  # noqa: F401 - registers commands
    cycle,  # noqa: F401 - registers `cycle run`
    ops,  # noqa: F401 - registers `worker`, `jobs`, `run`
    quote,  # noqa: F401 - registers commands
    rates,  # noqa: F401 - registers commands
    recharge,  # noqa: F401 - registers `recharge run`
    segments,  # noqa: F401 - registers commands
    wallet,  # noqa: F401 - registers `verify`
)
from talktime.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
