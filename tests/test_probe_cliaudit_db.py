"""A SQLite URL naming a file that is not a database is a one-line refusal that says what to
fix, not sqlite3's traceback, and the file is left as it was; `db upgrade base` on a new
database does not claim to be past `base`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from talktime.cli import app
from talktime.config import get_settings
from test_probe_ops_settings import _talktime


def _db_upgrade(monkeypatch: pytest.MonkeyPatch, url: str, *revision: str) -> Result:
    """`talktime db upgrade [revision]` in-process on ``url`` (and no config file)."""
    monkeypatch.setenv("TALKTIME_DATABASE_URL", url)
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["db", "upgrade", *revision])
    finally:
        get_settings.cache_clear()


def test_a_file_that_is_not_a_database_is_refused_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"these are my notes, not a database\n" * 4)
    before = junk.read_bytes()
    for args in (["accounts"], ["db", "upgrade"]):
        err = _talktime(monkeypatch, tmp_path, *args, TALKTIME_DATABASE_URL=f"sqlite:///{junk}")
        assert err.startswith("error[database_unavailable]: the database sqlite:///"), err
        assert "cannot be used: file is not a database; point TALKTIME_DATABASE_URL" in err
        assert len(err.strip().splitlines()) == 1, err
    assert junk.read_bytes() == before


def test_db_upgrade_base_on_a_new_database_does_not_say_it_is_past_base(
    unmigrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _db_upgrade(monkeypatch, unmigrated_url, "base")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.endswith("at revision None"), said
    assert "already past" not in said


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
def test_db_upgrade_of_an_in_memory_database_says_nothing_would_be_kept(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it printed "at revision 0006" for a database gone when the command ended
    result = _db_upgrade(monkeypatch, url)
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert said.startswith("error[invalid_settings]: TALKTIME_DATABASE_URL names an in-memory")
