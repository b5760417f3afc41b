"""`talktime db upgrade REVISION` with a revision that does not exist is a refusal that says
what to give, not alembic's traceback, and leaves the database where it was."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import wide_cli  # noqa: F401  (the `cli` fixture)
from talktime.cli import app
from talktime.store import current_revision, head_revision


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


def test_db_upgrade_to_an_older_revision_says_the_database_is_already_past_it(
    cli: CliRunner, engine: sa.Engine
) -> None:
    result = cli.invoke(app, ["db", "upgrade", "0004"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert f"at revision {head_revision()}" in said
    assert "already past revision '0004': talktime does not downgrade a database" in said
    assert current_revision(engine) == head_revision()
    fresh = cli.invoke(app, ["db", "upgrade"])
    assert "already past" not in fresh.output
