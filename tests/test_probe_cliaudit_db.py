"""A SQLite URL naming a file that is not a database is a one-line refusal that says what to
fix, not sqlite3's traceback, and the file is left as it was."""

from __future__ import annotations

from pathlib import Path

from test_probe_ops_settings import _talktime


def test_a_file_that_is_not_a_database_is_refused_without_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"these are my notes, not a database\n" * 4)
    before = junk.read_bytes()
    for args in (["accounts"], ["db", "upgrade"]):
        err = _talktime(tmp_path, *args, TALKTIME_DATABASE_URL=f"sqlite:///{junk}")
        assert err.startswith("error[database_unavailable]: the database sqlite:///"), err
        assert "cannot be used: file is not a database; point TALKTIME_DATABASE_URL" in err
        assert len(err.strip().splitlines()) == 1, err
    assert junk.read_bytes() == before
