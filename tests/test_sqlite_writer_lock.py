"""SQLite writers of several processes take turns on a file lock (`writer_turn`), so none of
them ever meets SQLite's busy handler."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from talktime.config import Settings
from talktime.store import make_engine
from talktime.store.writer import writer_turn

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import sqlalchemy as sa
    from talktime.config import Settings
    from talktime.store.writer import writer_turn
    from talktime.store import make_engine

    url, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    # the turn waits up to the busy timeout, but SQLite itself has no busy handler at all:
    # a writer that found the database locked would fail at once
    engine = make_engine(url, Settings(database_url=url, sqlite_busy_timeout_ms=60000))

    @sa.event.listens_for(engine, "connect")
    def no_busy_handler(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    while not go.exists():
        time.sleep(0.005)
    for i in range(count):
        with writer_turn(engine), engine.begin() as conn:
            for j in range(5):
                conn.execute(
                    sa.text("INSERT INTO writer_probe (name) VALUES (:n)"),
                    {"n": f"{name}-{i}-{j}"},
                )
    """
)


def test_writers_of_two_processes_take_turns_without_busy_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    engine = make_engine(url, Settings(database_url=url))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE writer_probe (name TEXT PRIMARY KEY)"))
    go = tmp_path / "go"
    env = {**os.environ, "TALKTIME_CONFIG": ""}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, name, "60", str(go)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    go.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM writer_probe")).scalar() == 2 * 60 * 5
    assert (tmp_path / "turns.db-writer.lock").exists()
    engine.dispose()


def test_an_in_memory_database_takes_only_the_thread_lock() -> None:
    engine = make_engine("sqlite://", Settings(database_url="sqlite://"))
    with writer_turn(engine), engine.begin() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()
