"""Helpers shared by the operations tests: a bare account row, a worker subprocess, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from talktime.store.wallet_tables import accounts, plans

TESTS = Path(__file__).parent


def make_account(engine: sa.Engine, name: str = "acme") -> int:
    """Insert a plan (if missing) and an account row; returns the account id."""
    with engine.begin() as conn:
        if conn.execute(sa.select(plans.c.name).where(plans.c.name == "test")).first() is None:
            conn.execute(plans.insert().values(name="test", monthly_free_credit=0, updated_at=0))
        return int(
            conn.execute(
                accounts.insert()
                .values(
                    name=name, plan="test", anchor_at=0, period_start=0, period_end=1, created_at=0
                )
                .returning(accounts.c.id)
            ).scalar_one()
        )


def start_worker(db_url: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """`talktime worker --plugin ops_plugin ARGS` on `db_url` in a child process."""
    environ = {
        **os.environ,
        "TALKTIME_DATABASE_URL": db_url,
        "TALKTIME_CONFIG": "/nonexistent/talktime.toml",
        "PYTHONPATH": str(TESTS),
        **env,
    }
    cmd = [sys.executable, "-m", "talktime", "worker", "--plugin", "ops_plugin", *args]
    return subprocess.Popen(cmd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `predicate` until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
