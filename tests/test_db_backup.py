"""`talktime db backup` and `talktime db restore` (SQLite): a snapshot taken while the database
is in use, and a restore that is safe after a crash. Before 1 Dec the README said to restore by
copying the backup over the file: SQLite then replayed the crashed process's leftover `-wal`
onto it (the restore undone, or the file damaged: "database disk image is malformed")."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from clikit import talktime_main
from talktime.store import make_engine, upgrade
from talktime.store.migrate import head_revision
from talktime.wallet import Wallet

# a process that writes to the database and dies without checkpointing: its commits are
# only in the -wal file it leaves behind
_CRASH_AFTER_WRITES = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint=0")
for i in range(int(sys.argv[2])):
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO plans (name, monthly_free_credit, updated_at) VALUES (?, 0, 0)",
        (f"after-{i}",),
    )
    conn.execute("COMMIT")
os.kill(os.getpid(), signal.SIGKILL)
"""


def _database(tmp_path: Path) -> tuple[str, str]:
    """A migrated SQLite file with one plan, `before`: (its path, its URL)."""
    path = str(tmp_path / "talktime.db")
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    wallet = Wallet.open(url)
    wallet.upsert_plan("before", 0)
    wallet.close()
    return path, url


def _plans(path: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM plans ORDER BY name")]


def _backup(monkeypatch: pytest.MonkeyPatch, url: str, copy: str) -> str:
    """`talktime db backup COPY` of the database at ``url``, which must succeed; its output."""
    made = talktime_main(monkeypatch, "db", "backup", copy, TALKTIME_DATABASE_URL=url)
    assert made.returncode == 0, made.stderr
    return made.stdout


def _crash_after_writes(path: str, writes: int) -> None:
    done = subprocess.run([sys.executable, "-c", _CRASH_AFTER_WRITES, path, str(writes)])
    assert done.returncode == -9
    assert os.path.getsize(f"{path}-wal") > 0  # the commits are in the leftover -wal


def test_a_restore_after_a_crash_gives_back_exactly_the_backup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, url = _database(tmp_path)
    copy = str(tmp_path / "backup.db")
    assert f"(revision {head_revision()})" in _backup(monkeypatch, url, copy)
    _crash_after_writes(path, 300)  # enough pages for a copied-over file to be damaged
    assert "after-299" in _plans(path)

    refused = talktime_main(monkeypatch, "db", "restore", copy, TALKTIME_DATABASE_URL=url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error[confirmation_required]: "), refused.stderr
    assert "--yes" in refused.stderr
    assert "after-299" in _plans(path)  # nothing changed

    done = talktime_main(monkeypatch, "db", "restore", copy, "--yes", TALKTIME_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert _plans(path) == ["before"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    verified = talktime_main(monkeypatch, "verify", TALKTIME_DATABASE_URL=url)
    assert verified.returncode == 0, verified.stderr


def test_a_backup_taken_while_a_writer_holds_commits_in_the_wal_has_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, url = _database(tmp_path)
    _crash_after_writes(path, 3)
    copy = str(tmp_path / "backup.db")
    _backup(monkeypatch, url, copy)
    assert _plans(copy) == ["after-0", "after-1", "after-2", "before"]


def test_a_backup_never_overwrites_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, url = _database(tmp_path)
    there = tmp_path / "there.db"
    there.write_bytes(b"keep me")
    refused = talktime_main(monkeypatch, "db", "backup", str(there), TALKTIME_DATABASE_URL=url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error[backup_refused]: "), refused.stderr
    assert "never overwrites" in refused.stderr
    assert there.read_bytes() == b"keep me"


@pytest.mark.parametrize("content", ["not sqlite", "no revision", "newer"])
def test_a_restore_of_a_file_that_is_not_a_backup_this_version_knows_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    path, url = _database(tmp_path)
    source = tmp_path / "source.db"
    if content == "not sqlite":
        source.write_bytes(b"x" * 8192)
        said = "is not a SQLite database"
    else:
        with sqlite3.connect(source) as conn:
            conn.execute("CREATE TABLE plans (name TEXT)")
            if content == "newer":
                conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
                conn.execute("INSERT INTO alembic_version VALUES ('0999')")
        said = "a newer talktime migrated it" if content == "newer" else "not a talktime database"
    before = Path(path).read_bytes()
    done = talktime_main(
        monkeypatch, "db", "restore", str(source), "--yes", TALKTIME_DATABASE_URL=url
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error[backup_refused]: "), done.stderr
    assert said in done.stderr
    assert "nothing was restored" in done.stderr or content == "not sqlite"
    assert Path(path).read_bytes() == before
    assert _plans(path) == ["before"]


def test_backup_and_restore_point_postgresql_to_its_own_tools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for command in ("backup", "restore"):
        refused = talktime_main(
            monkeypatch,
            "db",
            command,
            str(tmp_path / "x.db"),
            TALKTIME_DATABASE_URL="postgresql+psycopg://u@127.0.0.1:1/talktime",
        )
        assert refused.returncode == 1
        assert refused.stderr.startswith("error[invalid_settings]: "), refused.stderr
        assert "pg_dump" in refused.stderr


def test_a_restore_into_a_missing_directory_is_refused_and_into_a_new_file_creates_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the missing directory was a traceback ("unable to open database file")
    _, url = _database(tmp_path)
    copy = str(tmp_path / "backup.db")
    _backup(monkeypatch, url, copy)
    nowhere = f"sqlite:///{tmp_path}/no-such-dir/talktime.db"
    refused = talktime_main(
        monkeypatch, "db", "restore", copy, "--yes", TALKTIME_DATABASE_URL=nowhere
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error[backup_refused]: there is no directory for ")
    fresh = tmp_path / "new-machine.db"
    done = talktime_main(
        monkeypatch, "db", "restore", copy, "--yes", TALKTIME_DATABASE_URL=f"sqlite:///{fresh}"
    )
    assert done.returncode == 0, done.stderr
    assert _plans(str(fresh)) == ["before"]
