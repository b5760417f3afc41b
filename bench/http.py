"""Send-SMS over HTTP: requests per second and p50/p99/max latency of `POST /v1/messages` (wrk).

Starts `talktime serve` with 2 workers on SQLite (synchronous=FULL) and on PostgreSQL
(synchronous_commit=on), and beside them a bare FastAPI endpoint returning the same JSON with the
same 2 workers, all on 127.0.0.1. `wrk` keeps `--connections` requests in flight for
`--duration` seconds; a Lua script gives every request its own Idempotency-Key. Per target:
req/s, latency percentiles, non-2xx and socket errors, server CPU per request (utime + stime of
the server's process tree) and the ratio to the bare endpoint measured in the same run. After
each talktime run the books are checked through the API: the balance dropped by exactly the
price of every charge the server acknowledged.

    .venv/bin/python bench/http.py [--connections 32] [--duration 10] [--runs 1]
                                   [--only sqlite|postgresql] [--no-group-commit] [--accounts 1]

With ``--accounts N`` the sends are spread over N accounts (each with its own key, user and
number; wrk takes them in turn), as a platform's traffic from many customers would be.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py: drop its own directory from the path, or it would shadow the
# standard library's `http` package for every import below.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import httpx
from prometheus_client.parser import text_string_to_metric_families

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

WRK_SCRIPT = textwrap.dedent(
    """
    -- One POST per request, each with its own Idempotency-Key (a per-thread random prefix and
    -- a counter) and the next tenant's key and body in turn; counts requests sent, 201s and
    -- other statuses per thread; `done` prints one parseable RESULT line.
    local threads = {}
    local next_id = 1

    function setup(thread)
      thread:set("tid", next_id)
      next_id = next_id + 1
      table.insert(threads, thread)
    end

    function init(args)
      math.randomseed(os.time() + tid * 7919)
      prefix = string.format("%08x%08x-%d-", math.random(0, 2147483647),
                             math.random(0, 2147483647), tid)
      sent, created, other = 0, 0, 0
      hdrs = {}
      for i, tenant in ipairs(TENANTS) do
        hdrs[i] = {}
        for k, v in pairs(tenant.headers) do hdrs[i][k] = v end
      end
    end

    function request()
      sent = sent + 1
      local i = (sent + tid) % #TENANTS + 1
      hdrs[i]["Idempotency-Key"] = prefix .. sent
      return wrk.format("POST", "/v1/messages", hdrs[i], TENANTS[i].body)
    end

    function response(status, headers, body)
      if status == 201 then created = created + 1 else other = other + 1 end
    end

    function done(summary, latency, requests)
      local s, c, o = 0, 0, 0
      for _, t in ipairs(threads) do
        s = s + t:get("sent"); c = c + t:get("created"); o = o + t:get("other")
      end
      local e = summary.errors
      io.write(string.format(
        "RESULT requests=%d duration_us=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f " ..
        "sent=%d created=%d other=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, s, c, o,
        e.connect, e.read, e.write, e.status, e.timeout))
    end
    """
)


@dataclass
class Figures:
    """One wrk measurement of one target."""

    name: str
    rate: float
    p50: float
    p99: float
    max: float
    completed: int
    sent: int
    created: int
    non_2xx: int
    socket_errors: int
    timeouts: int
    cpu_ms: float
    """Server CPU (user + system, every process of the server) per completed request, ms."""
    busy: float
    """The share of the machine's CPU time (all cores, every process) not idle meanwhile."""

    def line(self, bare: Figures | None) -> str:
        ratio = f"{self.rate / bare.rate:4.0%} of bare" if bare and bare.rate else ""
        return (
            f"{self.name:<22} {self.rate:7.0f} req/s {ratio:>12}   p50 {self.p50:6.1f}  "
            f"p99 {self.p99:7.1f}  max {self.max:7.1f} ms   cpu {self.cpu_ms:5.2f} ms/req   "
            f"machine busy {self.busy:4.0%}   "
            f"non-2xx {self.non_2xx}  socket errors {self.socket_errors}  timeouts "
            f"{self.timeouts}"
        )


def ensure_wrk() -> str:
    """The wrk binary, installed with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and every descendant process, in seconds."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


Load = list[tuple[dict[str, str], dict[str, str]]]
"""What wrk sends, taken in turn: (headers, JSON body) per tenant."""


def lua_tenants(load: Load) -> str:
    """``load`` as the Lua table TENANTS of the wrk script."""
    tenants = []
    for headers, body in load:
        lua_headers = ", ".join(
            f"[{json.dumps(k)}] = {json.dumps(v)}"
            for k, v in {**headers, "Content-Type": "application/json"}.items()
        )
        tenants.append(f"{{headers = {{{lua_headers}}}, body = [==[{json.dumps(body)}]==]}}")
    return "TENANTS = {\n  " + ",\n  ".join(tenants) + "\n}\n"


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wrk_run(wrk: str, base: str, load: Load, connections: int, seconds: float) -> dict[str, int]:
    """Run wrk against ``base``/v1/messages; the RESULT line's fields."""
    script = lua_tenants(load) + WRK_SCRIPT
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        threads = min(2, connections)
        cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s"]
        cmd += ["--timeout", "10s", "-s", handle.name, f"{base}/v1/messages"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(handle.name)
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise RuntimeError(f"wrk printed no RESULT line:\n{out}")


def measure(
    wrk: str,
    name: str,
    base: str,
    pid: int,
    load: Load,
    args: argparse.Namespace,
    warm_up: bool = True,
) -> Figures:
    """Warm up, then measure ``base`` with wrk and the server tree's CPU."""
    if warm_up:
        wrk_run(wrk, base, load, args.connections, args.warmup)
    cpu_before = tree_cpu_seconds(pid)
    busy_before, total_before = machine_ticks()
    r = wrk_run(wrk, base, load, args.connections, args.duration)
    cpu = tree_cpu_seconds(pid) - cpu_before
    busy_after, total_after = machine_ticks()
    completed = r["requests"]
    return Figures(
        name=name,
        rate=completed / (r["duration_us"] / 1e6),
        p50=r["p50_us"] / 1000,
        p99=r["p99_us"] / 1000,
        max=r["max_us"] / 1000,
        completed=completed,
        sent=r["sent"],
        created=r["created"],
        non_2xx=r["other"],
        socket_errors=r["connect"] + r["read"] + r["write"],
        timeouts=r["timeout"],
        cpu_ms=cpu * 1000 / max(completed, 1),
        busy=(busy_after - busy_before) / max(total_after - total_before, 1),
    )


@contextmanager
def bare_server(body: str, workers: int) -> Iterator[tuple[str, int]]:
    """A bare FastAPI app answering POST /v1/messages with ``body``: (base URL, pid)."""
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
            yield base, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=15)


WRITER_SERIES = {
    "talktime_group_commit_batches_total": 0,
    "talktime_group_commit_units_total": 1,
    "talktime_group_commit_batch_seconds_total": 2,
    "talktime_group_commit_commit_seconds_total": 3,
    "talktime_group_commit_together_total": 4,
    "talktime_group_commit_fallbacks_total": 5,
}


def writer_counters(base: str, workers: int) -> dict[str, list[float]]:
    """Each worker's group-commit counters from `GET /metrics`, by pid: [batches, units,
    seconds in batches, seconds in COMMIT, batches in one pass, passes handed back]. A scrape
    reaches one worker, so it scrapes on fresh connections until it has seen ``workers`` of
    them."""
    seen: dict[str, list[float]] = {}
    for _ in range(200):
        text = httpx.get(f"{base}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in WRITER_SERIES:
                    counters = seen.setdefault(s.labels["pid"], [0.0] * len(WRITER_SERIES))
                    counters[WRITER_SERIES[s.name]] = s.value
        if len(seen) >= workers:
            return seen
    raise RuntimeError(f"/metrics showed {len(seen)} of the {workers} workers")


def writer_line(before: dict[str, list[float]], after: dict[str, list[float]], wall: float) -> str:
    """The writers' share of the wall time in batches, and per batch and unit."""
    width = len(WRITER_SERIES)
    grew = [sum(after[p][i] - before.get(p, [0.0] * width)[i] for p in after) for i in range(width)]
    batches, units, seconds, commit, together, fallbacks = grew
    if not batches or not units:
        return f"{'':<22} writers: no batch (group commit off)"
    return (
        f"{'':<22} writers: in a batch {seconds / wall:.0%} of the time (summed over the "
        f"workers; on SQLite the share the write lock is held), {units / batches:.1f} units a "
        f"batch, {seconds / units * 1000:.3f} ms a unit, COMMIT {commit / batches * 1000:.2f} ms "
        f"a batch, {together / batches:.0%} of the batches in one pass ({fallbacks:.0f} handed "
        "back)"
    )


def settled_balance(http: httpx.Client, tenants: list[apikit.Tenant]) -> Decimal:
    """The tenants' available balances, summed, once the sum stopped moving (the requests a
    wrk run cut off at its end still finish on the server)."""
    last = None
    while True:
        now = Decimal(0)
        for t in tenants:
            response = http.get("/v1/balance", headers=t.auth)
            response.raise_for_status()
            now += Decimal(response.json()["available"])
        if now == last:
            return now
        last = now
        time.sleep(0.5)


def bench_number(run: int, index: int, accounts: int) -> str:
    """A sending number of its own per run and tenant (the PostgreSQL database is shared by
    the runs); the single-tenant bench keeps the numbers it always used."""
    if accounts == 1:
        return f"+1415555{100 + run:04d}"
    return f"+1415{200 + run:03d}{index:04d}"


def talktime_run(
    wrk: str, name: str, url: str, args: argparse.Namespace, run: int
) -> tuple[Figures, str]:
    """Measure send-SMS on ``url`` and check the books through the API."""
    env = {
        "TALKTIME_ADMIN_KEY": apikit.ADMIN_KEY,
        "TALKTIME_WORKERS": str(args.workers),
        "TALKTIME_LOG_LEVEL": "WARNING",
        "TALKTIME_RATE_CARDS_DIR": tempfile.mkdtemp(),
    }
    if args.no_group_commit:
        env["TALKTIME_GROUP_COMMIT"] = "false"
    with serve(url, **env) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        tenants: list[apikit.Tenant] = []
        load: Load = []
        prices: set[Decimal] = set()
        for index in range(args.accounts):
            number = bench_number(run, index, args.accounts)
            t = apikit.tenant(http, plan="business", credit="1000000.00", number=number)
            body = {"from": number, "to": "+14155550111", "text": "Your code is 1234"}
            body["user"] = t.user
            first = http.post("/v1/messages", json=body, headers={**t.auth, **apikit.idem()})
            assert first.status_code == 201, first.text
            prices.add(Decimal(first.json()["amount"]))
            tenants.append(t)
            load.append((t.auth, body))
        assert len(prices) == 1, f"the tenants pay different prices: {prices}"
        price = prices.pop()
        wrk_run(wrk, server.base_url, load, args.connections, args.warmup)
        before = settled_balance(http, tenants)
        pid = server.process.pid
        writers_before = writer_counters(server.base_url, args.workers)
        started = time.perf_counter()
        figures = measure(wrk, name, server.base_url, pid, load, args, warm_up=False)
        wall = time.perf_counter() - started
        writers = writer_line(writers_before, writer_counters(server.base_url, args.workers), wall)
        dropped = before - settled_balance(http, tenants)
    charges, rest = divmod(dropped, price)
    cut = figures.sent - figures.completed  # in flight when wrk stopped
    ok = rest == 0 and figures.created <= charges <= figures.created + cut
    books = (
        f"{'':<22} books: balance dropped {dropped} = {charges} x {price}; 201s {figures.created}"
        f" + {charges - figures.created} of {cut} requests cut off by wrk's stop: "
        + ("OK" if ok else "MISMATCH")
    )
    if not ok:
        raise SystemExit(f"{figures.line(None)}\n{books}\nthe books do not agree")
    return figures, f"{books}\n{writers}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up")
    parser.add_argument("--runs", type=int, default=1, help="bare, then talktime, N times")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--no-group-commit", action="store_true", help="a commit per request")
    parser.add_argument(
        "--accounts", type=int, default=1, help="spread the sends over this many accounts"
    )
    args = parser.parse_args()
    if not 1 <= args.accounts <= 9999:
        parser.error("--accounts must be between 1 and 9999")
    wrk = ensure_wrk()
    load = os.getloadavg()[0]
    print(
        f"wrk, {args.connections} connections, {args.duration:g} s per target, {args.workers} "
        f"workers, {args.accounts} account{'s' if args.accounts > 1 else ''}, 127.0.0.1, "
        f"cpu count {os.cpu_count()}, load average {load:.2f}",
        flush=True,
    )
    sample = (
        '{"id":"msg_0","direction":"outbound","from":"+14155550100","to":"+14155550111",'
        '"status":"accepted","encoding":"GSM-7","segments":1,"amount":"0.0100"}'
    )
    pg: pgserver.PostgresServer | None = None
    pg_url = os.environ.get("TALKTIME_TEST_PG_URL")
    if args.only in (None, "postgresql") and not pg_url:
        try:
            pg = pgserver.start(install=False)
            pg_url = pg.url()
        except pgserver.PostgresUnavailableError as exc:
            print(f"PostgreSQL skipped: {exc}")
    rows: list[tuple[int, Figures, Figures]] = []
    try:
        for run in range(1, args.runs + 1):
            print(f"-- run {run} (load average {os.getloadavg()[0]:.2f})", flush=True)
            with bare_server(sample, args.workers) as (base, pid):
                bare = measure(wrk, "bare FastAPI", base, pid, [({}, {"text": "x"})], args)
            print(bare.line(None), flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                targets = []
                if args.only in (None, "sqlite"):
                    targets.append(("SQLite", f"sqlite:///{tmp}/bench.db"))
                if args.only in (None, "postgresql") and pg_url:
                    targets.append(("PostgreSQL", pg_url))
                for name, url in targets:
                    figures, books = talktime_run(wrk, f"send-SMS {name}", url, args, run)
                    print(f"{figures.line(bare)}\n{books}", flush=True)
                    rows.append((run, bare, figures))
    finally:
        if pg is not None:
            pg.stop()
    print(
        "\n| run | target | req/s | of bare | p50 ms | p99 ms | max ms | CPU ms/req "
        "| machine busy |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    shown: set[int] = set()
    for run, bare, figures in rows:
        for f in ([bare] if run not in shown else []) + [figures]:
            ratio = f"{f.rate / bare.rate:.0%}" if f is not bare else ""
            print(
                f"| {run} | {f.name} | {f.rate:.0f} | {ratio} | {f.p50:.1f} | {f.p99:.1f} "
                f"| {f.max:.0f} | {f.cpu_ms:.2f} | {f.busy:.0%} |"
            )
        shown.add(run)


if __name__ == "__main__":
    main()
