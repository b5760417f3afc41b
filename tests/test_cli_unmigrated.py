"""The `talktime` command on a database that was never migrated refuses with the command that
fixes it (`error[database_not_migrated]`, exit 1) instead of a traceback, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

TALKTIME = str(Path(sys.executable).with_name("talktime"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    name = f"empty_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


@pytest.mark.parametrize(
    "args", [["jobs"], ["usage", "1"], ["statement", "1", "2026-11"], ["verify"]]
)
def test_a_command_on_an_unmigrated_database_says_to_upgrade_it(
    empty_url: str, args: list[str]
) -> None:
    env = {**os.environ, "TALKTIME_DATABASE_URL": empty_url}
    done = subprocess.run([TALKTIME, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error[database_not_migrated]: "), done.stderr
    assert "talktime db upgrade" in done.stderr
