"""`talktime serve --workers 2` logs in the configured format from every worker process: the
workers import the app factory and never ran the CLI's logging set-up, so their records were
Python's bare last-resort lines (warnings and errors only, not JSON, without request ids)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from talktime.store import make_engine, upgrade

from live import free_port


def test_every_worker_of_serve_logs_json_lines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'talktime.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "TALKTIME_DATABASE_URL": url,
        "TALKTIME_CONFIG": "",
        "TALKTIME_LOG_FORMAT": "json",
        "TALKTIME_LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "talktime", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    probes = [uuid.uuid4().hex for _ in range(20)]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "talktime serve exited"
                assert time.monotonic() < deadline
                time.sleep(0.1)
        for probe in probes:  # new connections: both workers answer some
            httpx.get(f"http://127.0.0.1:{port}/healthz?probe={probe}", timeout=5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    lines = err.decode().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert [line for line in lines if not line.startswith("{")] == []  # every line is JSON
    logged = {r["message"] for r in records if r["logger"] == "uvicorn.access"}
    assert all(any(p in message for message in logged) for p in probes)
