"""CLI test helpers: a runner whose refusals never wrap, the check of a clean refusal, and the
`talktime` command's entry point run in this process.

Import the fixture into a test module to use it there as `cli`: `from clikit import wide_cli`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

import talktime.cli
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


def _must_not_start(monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:
    """Make serving, a worker and `run`'s worker process fail the test instead of starting."""
    import uvicorn

    from talktime.ops import worker

    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(f"`talktime {' '.join(args)}` started instead of refusing")

    monkeypatch.setattr(uvicorn, "run", started)
    monkeypatch.setattr(worker, "Worker", started)
    monkeypatch.setattr(subprocess, "Popen", started)


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """Put back what `logs.configure` (run by `serve`, `run` and `worker`) changes."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "httpx")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    try:
        yield
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def talktime_main(monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> Ran:
    """`talktime ARGS` through the console script's entry point (`talktime.cli.main`, with its
    refusals of bad settings and unusable databases) in this process, with no TALKTIME_ setting
    but `env`: about 1.5 s cheaper than a child process.

    An exception out of `main` other than SystemExit is what would have been a traceback: it
    propagates and fails the test. Nothing may start: serving, a worker, or `run`'s worker
    process fails the test (these tests are about refusals)."""
    for key in list(os.environ):
        if key.startswith("TALKTIME_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["talktime", *args])
    out, err = io.StringIO(), io.StringIO()
    get_settings.cache_clear()
    try:
        with (
            _logging_kept(),
            monkeypatch.context() as guarded,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            _must_not_start(guarded, args)
            # made while stderr is the buffer, as the real one is made at import: no colours
            guarded.setattr(cli_app, "err_console", Console(stderr=True))
            with pytest.raises(SystemExit) as stop:
                talktime.cli.main()
    finally:
        get_settings.cache_clear()
    code = stop.value.code
    return Ran(
        code if isinstance(code, int) else 0 if code is None else 1, out.getvalue(), err.getvalue()
    )
