"""The `talktime` command on a database that was never migrated refuses with the command that
fixes it (`error[database_not_migrated]`, exit 1) instead of a traceback, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from clikit import talktime_main


@pytest.mark.parametrize(
    "args", [["jobs"], ["usage", "1"], ["statement", "1", "2026-11"], ["verify"]]
)
def test_a_command_on_an_unmigrated_database_says_to_upgrade_it(
    monkeypatch: pytest.MonkeyPatch, unmigrated_url: str, args: list[str]
) -> None:
    done = talktime_main(
        monkeypatch,
        *args,
        TALKTIME_DATABASE_URL=unmigrated_url,
        TALKTIME_CONFIG="",
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error[database_not_migrated]: "), done.stderr
    assert "talktime db upgrade" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "0"],
        ["run", "--port", "0"],
        ["worker", "--once"],
        ["jobs"],
        ["verify"],
        ["usage", "1"],
        ["accounts", "list"],
        ["accounts", "create", "Acme", "--plan", "business"],
        ["keys", "create", "--admin"],
        ["cycle", "run"],
        ["recharge", "run"],
    ],
)
def test_a_command_on_a_missing_sqlite_file_refuses_without_creating_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    # SQLite created the mistyped file empty, and the command then said the database was
    # not migrated: the typo stayed hidden and an empty file was left behind
    missing = tmp_path / "typo.db"
    done = talktime_main(
        monkeypatch, *args, TALKTIME_DATABASE_URL=f"sqlite:///{missing}", TALKTIME_CONFIG=""
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error[database_not_found]: "), done.stderr
    assert str(missing) in done.stderr
    assert "talktime db upgrade" in done.stderr
    assert not missing.exists()


def test_db_current_on_a_missing_sqlite_file_says_upgrade_creates_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "new.db"
    url = f"sqlite:///{missing}"
    done = talktime_main(
        monkeypatch, "db", "current", TALKTIME_DATABASE_URL=url, TALKTIME_CONFIG=""
    )
    assert done.returncode == 0, done.stderr
    assert "current: None" in done.stdout
    assert "no database file at" in done.stdout
    assert not missing.exists()
    created = talktime_main(
        monkeypatch, "db", "upgrade", TALKTIME_DATABASE_URL=url, TALKTIME_CONFIG=""
    )
    assert created.returncode == 0, created.stderr
    assert missing.exists()
