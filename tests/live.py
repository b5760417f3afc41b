"""A real `talktime serve` process on a free loopback port, for end-to-end tests over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from talktime.store import make_engine, upgrade


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]


@contextmanager
def serve(database_url: str, **env: str) -> Iterator[LiveServer]:
    """Upgrade the database, start `talktime serve` on it and wait until /healthz answers."""
    port = free_port()
    environ = {
        **os.environ,
        "TALKTIME_DATABASE_URL": database_url,
        "TALKTIME_CONFIG": "",
        **env,
    }
    # in-process: `talktime db upgrade` in a child process cost ~1.5 s of interpreter start
    # for what is, on the fixtures' databases, a check that they are at the newest revision
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    # the server's log goes to a file: a pipe nobody reads fills after 64 KiB (about 700
    # logged requests) and every server process then blocks on its next log line
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "talktime", "serve", "--port", str(port)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            # a loaded machine starts slowly; an exit shows at once
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise RuntimeError(f"talktime serve exited with {proc.returncode}:\n{err}")
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield LiveServer(base_url=base, process=proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
