"""CLI test helpers: a runner whose refusals never wrap, and the check of a clean refusal.

Import the fixture into a test module to use it there as `cli`: `from clikit import wide_cli`.
"""

from __future__ import annotations

import sys

import pytest
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

import talktime.cli  # noqa: F401  (loads talktime.cli.app)

cli_app = sys.modules["talktime.cli.app"]


@pytest.fixture(name="cli")
def wide_cli(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """conftest's runner, with a stderr console wide enough that rich never wraps a refusal."""
    monkeypatch.setattr(cli_app, "err_console", Console(stderr=True, width=1000))
    return cli


def refused(result: Result, code: str) -> str:
    """The refusal's output, after checking it was a clean `error[code]` and exit 1."""
    assert isinstance(result.exception, SystemExit), result.exception  # not a traceback
    assert result.exit_code == 1, result.output
    assert f"error[{code}]: " in result.output, result.output
    return result.output
