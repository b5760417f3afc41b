"""`talktime db upgrade` and `db current` on databases they cannot move: an argument alembic's
resolver asserts on is a refusal, not a traceback; a database a newer talktime migrated (the
operator rolled the package back) is named so, not sent to `db upgrade` again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (the `cli` fixture)
from talktime.cli import app
from talktime.store import current_revision, head_revision


@pytest.mark.parametrize("revision", ["", "@", f"{head_revision()}+1", "heads+1"])
def test_db_upgrade_to_an_unresolvable_revision_is_refused_without_a_traceback(
    cli: CliRunner, engine: sa.Engine, revision: str
) -> None:
    result = cli.invoke(app, ["db", "upgrade", "--", revision])
    output = refused(result, "invalid_revision")
    assert f"cannot upgrade to revision {revision!r}: " in output
    assert "give `head` (the default)" in output
    assert current_revision(engine) == head_revision()


def _set_revision(engine: sa.Engine, revision: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def test_a_database_a_newer_talktime_migrated_is_named_so_and_left_alone(
    cli: CliRunner, engine: sa.Engine
) -> None:
    _set_revision(engine, "0099")
    try:
        current = cli.invoke(app, ["db", "current"])
        assert current.exit_code == 0, current.output
        assert "current: 0099" in current.output
        assert "migrated by a newer talktime: run that version" in current.output
        assert "needs `talktime db upgrade`" not in current.output

        output = refused(cli.invoke(app, ["db", "upgrade"]), "database_newer")
        assert "the database is at revision '0099'" in output
        assert f"newest revision {head_revision()!r}" in output
        assert "a newer talktime migrated it; run that version" in output
        assert "give `head`" not in output  # head was given: that advice would be false
        assert current_revision(engine) == "0099"
    finally:
        _set_revision(engine, head_revision())
