"""CLI test helpers: a runner whose refusals never wrap, the check of a clean refusal, and the
`talktime` command's entry point run in this process.

Import the fixture into a test module to use it there as `cli`: `from clikit import wide_cli`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass

import pytest
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

import talktime.cli
from talktime import logs
from talktime.config import get_settings

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


@dataclass
class Ran:
    """What `talktime ARGS` did: its exit status, stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str


def talktime_main(monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> Ran:
    """`talktime ARGS` through the console script's entry point (`talktime.cli.main`, with its
    refusals of bad settings and unusable databases) in this process, with no TALKTIME_ setting
    but `env`: about 1.5 s cheaper than a child process.

    An exception out of `main` other than SystemExit is what would have been a traceback: it
    propagates and fails the test. Nothing may start serving or working: `logs.configure`, the
    first thing `serve`, `run` and `worker` do once their settings are good, fails the test."""

    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(f"`talktime {' '.join(args)}` started instead of refusing")

    for key in list(os.environ):
        if key.startswith("TALKTIME_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["talktime", *args])
    monkeypatch.setattr(logs, "configure", started)
    out, err = io.StringIO(), io.StringIO()
    get_settings.cache_clear()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            # made while stderr is the buffer, as the real one is made at import: no colours
            monkeypatch.setattr(cli_app, "err_console", Console(stderr=True))
            with pytest.raises(SystemExit) as stop:
                talktime.cli.main()
    finally:
        get_settings.cache_clear()
    code = stop.value.code
    return Ran(
        code if isinstance(code, int) else 0 if code is None else 1, out.getvalue(), err.getvalue()
    )
