"""The `talktime` command on a database that was never migrated refuses with the command that
fixes it (`error[database_not_migrated]`, exit 1) instead of a traceback, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TALKTIME = str(Path(sys.executable).with_name("talktime"))


@pytest.mark.parametrize(
    "args", [["jobs"], ["usage", "1"], ["statement", "1", "2026-11"], ["verify"]]
)
def test_a_command_on_an_unmigrated_database_says_to_upgrade_it(
    unmigrated_url: str, args: list[str]
) -> None:
    env = {**os.environ, "TALKTIME_DATABASE_URL": unmigrated_url}
    done = subprocess.run([TALKTIME, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error[database_not_migrated]: "), done.stderr
    assert "talktime db upgrade" in done.stderr
