"""Helpers shared by the operations tests: a bare account row, a worker subprocess, waiting,
and the webhook set-up (settings, an API client and key, an endpoint with one event, running
the due deliveries on a fake clock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.keys import create_key
from talktime.ops import jobs, webhooks
from talktime.ops.clock import now_us
from talktime.wallet import Wallet, outbox

from receiver import Receiver, receiver

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
        "TALKTIME_CONFIG": "",
        # the caller's path too: from a worktree, `-m talktime` must be its code, not the venv's
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
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


def settings_for(engine: sa.Engine, **extra: object) -> Settings:
    """Settings on `engine`'s database that allow webhooks to loopback receivers."""
    url = engine.url.render_as_string(hide_password=False)
    return Settings(database_url=url, webhooks_allow_private=True, **extra)  # type: ignore[arg-type]


def api_client(db_url: str, **settings: object) -> tuple[TestClient, sa.Engine]:
    """An in-process client of the app on `db_url` (with `settings`), and the app's engine."""
    app = create_app(Settings(database_url=db_url, **settings))  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False), app.state.engine


def bearer(engine: sa.Engine, account: int) -> dict[str, str]:
    """The Authorization header of a new API key of `account`."""
    with engine.begin() as conn:
        token = create_key(conn, account).token
    return {"Authorization": f"Bearer {token}"}


def endpoint_with_event(
    engine: sa.Engine, settings: Settings, account: int, url: str, now: int
) -> webhooks.Endpoint:
    """A new endpoint of `account` at `url`, and one `balance.low` event for it at `now`."""
    endpoint = webhooks.create_endpoint(engine, settings, account, url)
    with engine.begin() as conn:
        webhooks.record_event(conn, account, "balance.low", {}, now=now)
    return endpoint


@contextmanager
def hooked_event(
    engine: sa.Engine, statuses: list[int]
) -> Iterator[tuple[int, Settings, int, Receiver, webhooks.Endpoint]]:
    """A new account with an endpoint at a receiver answering `statuses` and one event for it
    at t0 (now): yields (account, settings, t0, receiver, endpoint), the receiver up inside."""
    account = make_account(engine)
    settings = settings_for(engine)
    t0 = now_us()
    with receiver(statuses) as hook:
        endpoint = endpoint_with_event(engine, settings, account, hook.url, t0)
        yield account, settings, t0, hook, endpoint


def disabled_reason(engine: sa.Engine, account: int, endpoint_id: str) -> str:
    """Why the endpoint was disabled (it must have been given a reason)."""
    reason = webhooks.get_endpoint(engine, account, endpoint_id).disabled_reason
    assert reason is not None
    return reason


def run_due(engine: sa.Engine, settings: Settings, now: int) -> list[str]:
    """Claim and run every delivery job due at `now` (a fake clock); returns the outcomes."""
    out = []
    while claimed := jobs.claim(engine, "test", now=now, kinds=(webhooks.DELIVER,)):
        for job in claimed:
            out.append(webhooks.deliver(engine, settings, int(job.payload["delivery_id"]), now=now))
            with engine.begin() as conn:
                assert jobs.finish(conn, job, now=now)
    return out


def next_run_at(engine: sa.Engine) -> int | None:
    """When the next pending delivery job is due, or None."""
    pending = jobs.list_jobs(engine, ("pending",))
    due = [j.run_at for j in pending if j.kind == webhooks.DELIVER]
    return min(due) if due else None


def attempt_outcomes(engine: sa.Engine, account: int, endpoint_id: str) -> list[str]:
    """The outcome of each attempt of the endpoint's only delivery, oldest first."""
    [delivery] = webhooks.list_deliveries(engine, account, endpoint_id)
    return [a["outcome"] for a in delivery["attempt_log"]]


def lapse_pending_holds(wallet: Wallet) -> int:
    """Move every pending hold's deadline a second into the past and run the expiry job now;
    returns how many it released. (Running the job hours ahead instead dated the release
    after a month end whenever the run was within those hours of one: the release expired the
    month's free credit as lapsed, and the API, on the real clock, then found it gone.)"""
    from talktime.store.wallet_tables import holds

    with wallet.engine.begin() as conn:
        conn.execute(
            sa.update(holds)
            .where(holds.c.state == "pending")
            .values(expires_at=now_us() - 1_000_000)
        )
    return wallet.expire_holds()


def wallet_events(
    engine: sa.Engine, account: int, n: int = 1, type_: str = outbox.RECHARGE_SUCCEEDED
) -> None:
    """``n`` wallet events of ``type_`` in the outbox, as a recharge writes them (the worker
    dispatches them)."""
    with engine.begin() as conn:
        outbox.write_events(
            conn,
            [
                outbox.event_row(account, type_, {"amount": 10_000_000 + i}, now_us())
                for i in range(n)
            ],
        )
