"""The `talktime` command on a database that was never migrated refuses with the command that
fixes it (`error[database_not_migrated]`, exit 1) instead of a traceback, on both backends."""

from __future__ import annotations

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
