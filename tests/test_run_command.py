"""`talktime run` (what `make run` starts): the API and a worker together; SIGTERM stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from talktime.ops import jobs
from talktime.store import make_engine

from live import free_port
from ops_helpers import wait_for


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _start_run(tmp_path: Path, **popen: Any) -> tuple[subprocess.Popen[bytes], int, str]:
    """`talktime run` on a fresh, migrated SQLite database: (process, port, database URL)."""
    url = f"sqlite:///{tmp_path / 'run.db'}"
    env = {
        **os.environ,
        "TALKTIME_DATABASE_URL": url,
        "TALKTIME_CONFIG": "",
    }
    cli = [sys.executable, "-m", "talktime"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(
        [*cli, "run", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, **popen
    )
    return proc, port, url


def _wait_until_healthy(port: int) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=60)


@pytest.mark.slow
def test_run_serves_the_api_with_a_worker_and_stops_both(tmp_path: Path) -> None:
    proc, port, url = _start_run(tmp_path, stderr=subprocess.DEVNULL)
    engine = make_engine(url)
    try:
        _wait_until_healthy(port)
        # the worker's first pass runs the periodic jobs
        wait_for(lambda: bool(jobs.list_jobs(engine, ("done",))), timeout=60)
        [worker] = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        engine.dispose()
    assert code == 0
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text()


@pytest.mark.slow
def test_ctrl_c_to_the_terminal_stops_both_without_a_traceback(tmp_path: Path) -> None:
    # Ctrl-C sends SIGINT to the whole foreground process group: the worker gets it directly
    # and again (as SIGTERM) from `talktime run`, so its handler must take a second signal.
    proc, port, _ = _start_run(tmp_path, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_until_healthy(port)
        wait_for(lambda: len(_children(proc.pid)) == 1, timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-2000:]
