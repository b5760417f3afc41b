"""The `talktime` command. Each submodule registers its commands on the shared Typer app."""

from __future__ import annotations

from talktime.cli import (
    core,  # noqa: F401 - registers commands
    ops,  # noqa: F401 - registers commands
)
from talktime.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
