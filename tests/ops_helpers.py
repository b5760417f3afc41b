"""Helpers shared by the operations tests: a bare account row, a worker subprocess, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from talktime.wallet import Wallet

TESTS = Path(__file__).parent


def make_account(engine: sa.Engine, name: str = "acme") -> int:
    """A real account (through the wallet) on a plan without free credit; returns its id."""
    wallet = Wallet(engine)
    if "ops-test" not in wallet.plans():
        wallet.upsert_plan("ops-test", 0)
    return wallet.create_account(name, "ops-test", f"create-{name}").account.id


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
