"""Send-SMS over HTTP: requests per second and p50/p99 latency of `POST /v1/messages`.

Starts `talktime serve` with 2 workers on SQLite (synchronous=FULL) and on PostgreSQL
(synchronous_commit=on), and beside them a bare FastAPI endpoint returning the same JSON with the
same 2 workers, all on 127.0.0.1; a bounded asyncio httpx load generator keeps `--connections`
requests in flight for `--requests` requests each. Prints the figures and the ratio to the bare
endpoint measured in the same run.

    .venv/bin/python bench/http.py [--connections 32] [--requests 2000] [--only sqlite]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py: drop its own directory from the path, or it would shadow the
# standard library's `http` package for every import below.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import apikit
import pgserver
from live import free_port, serve

BARE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    BODY = {body!r}
    bare = FastAPI()

    @bare.post("/v1/messages")
    async def send(request: Request) -> Response:
        await request.json()
        return Response(BODY, status_code=201, media_type="application/json")
    """
)


@contextmanager
def bare_server(body: str, workers: int) -> Iterator[str]:
    """A bare FastAPI app answering POST /v1/messages with ``body``, under uvicorn."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare_app.py").write_text(BARE_APP.format(body=body))
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "bare_app:bare", "--app-dir", tmp]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        cmd += ["--log-level", "warning", "--no-access-log"]
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.post(f"{base}/v1/messages", json={}, timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=15)


async def load(
    base: str, headers: dict[str, str], body: dict[str, str], connections: int, total: int
) -> tuple[float, list[float], int]:
    """(requests/s, latencies in s, non-2xx count) of ``total`` POSTs, ``connections`` at once."""
    latencies: list[float] = []
    failures = 0
    queue = iter(range(total))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def worker() -> None:
            nonlocal failures
            for _ in queue:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/messages",
                    json=body,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 300:
                    failures += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return total / elapsed, latencies, failures


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def measure(
    name: str, base: str, headers: dict[str, str], body: dict[str, str], args: argparse.Namespace
) -> float:
    asyncio.run(load(base, headers, body, args.connections, min(200, args.requests)))  # warm up
    rate, latencies, failures = asyncio.run(
        load(base, headers, body, args.connections, args.requests)
    )
    print(
        f"{name:<28} {rate:8.0f} req/s   p50 {pct(latencies, 50):6.1f} ms   "
        f"p99 {pct(latencies, 99):6.1f} ms   non-2xx {failures}",
        flush=True,
    )
    return rate


def talktime_run(name: str, url: str, args: argparse.Namespace, bare_rate: float) -> None:
    env = {
        "TALKTIME_ADMIN_KEY": apikit.ADMIN_KEY,
        "TALKTIME_WORKERS": str(args.workers),
        "TALKTIME_LOG_LEVEL": "WARNING",
        "TALKTIME_RATE_CARDS_DIR": tempfile.mkdtemp(),
    }
    with serve(url, **env) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        t = apikit.tenant(http, plan="business", credit="100000.00")
        body = {"from": t.number or "", "to": "+14155550111", "text": "Your code is 1234"}
        body["user"] = t.user
        rate = measure(f"talktime send-SMS, {name}", server.base_url, t.auth, body, args)
        print(f"{'':<28} {rate / bare_rate:8.0%} of the bare endpoint", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(
        f"{args.requests} requests, {args.connections} connections, {args.workers} workers, "
        f"127.0.0.1 (cpu count {os.cpu_count()})",
        flush=True,
    )
    sample = (
        '{"id":"msg_0","direction":"outbound","from":"+14155550100","to":"+14155550111",'
        '"status":"accepted","encoding":"GSM-7","segments":1,"amount":"0.0100"}'
    )
    with bare_server(sample, args.workers) as base:
        bare_rate = measure("bare FastAPI endpoint", base, {}, {"text": "x"}, args)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "sqlite"):
            talktime_run("SQLite", f"sqlite:///{tmp}/bench.db", args, bare_rate)
        if args.only in (None, "postgresql"):
            given = os.environ.get("TALKTIME_TEST_PG_URL")
            if given:
                talktime_run("PostgreSQL", given, args, bare_rate)
                return
            try:
                pg = pgserver.start(install=False)
            except pgserver.PostgresUnavailableError as exc:
                print(f"PostgreSQL skipped: {exc}")
                return
            try:
                talktime_run("PostgreSQL", pg.url(), args, bare_rate)
            finally:
                pg.stop()


if __name__ == "__main__":
    main()
