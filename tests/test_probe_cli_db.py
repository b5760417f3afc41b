"""`talktime db upgrade REVISION` with a revision that does not exist is a refusal that says
what to give, not alembic's traceback, and leaves the database where it was."""

from __future__ import annotations

import sys

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from talktime.cli import app
from talktime.store import current_revision, head_revision

cli_app = sys.modules["talktime.cli.app"]


@pytest.fixture
def cli(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """conftest's runner, with a stderr console wide enough that rich never wraps a refusal."""
    monkeypatch.setattr(cli_app, "err_console", Console(stderr=True, width=1000))
    return cli


@pytest.mark.parametrize("revision", ["nope", "-1", "9999"])
def test_db_upgrade_to_an_unknown_revision_is_refused_without_a_traceback(
    cli: CliRunner, engine: sa.Engine, revision: str
) -> None:
    result = cli.invoke(app, ["db", "upgrade", "--", revision])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    assert f"error[invalid_revision]: cannot upgrade to revision {revision!r}: " in result.output
    assert "give `head` (the default)" in result.output
    assert current_revision(engine) == head_revision()
