"""A `talktime worker` SIGKILLed while it pays auto-recharges (the Stripe fake) and delivers
webhooks, then run again: each recharge paid once and granted once, every event delivered (at
least once, under one webhook id), no job or recharge left stuck, the wallet verifies clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from fakestripe import Seen, fake_stripe
from talktime.config import Settings
from talktime.ops import webhooks
from talktime.ops.jobs import list_jobs
from talktime.store.ops_tables import webhook_deliveries, webhook_events
from talktime.store.recharge_tables import recharges
from talktime.store.wallet_tables import ledger, outbox
from talktime.wallet import Wallet
from talktime.wallet import recharge as rc

from ops_helpers import wait_for
from receiver import receiver

D = 1_000_000
ACCOUNTS = 8


def _accounts(engine: sa.Engine, settings: Settings, hook_url: str) -> None:
    """Accounts with $4 paid left under a $5 threshold (a recharge due each; one card
    declines), a saved Stripe card and a webhook endpoint for every event."""
    wallet = Wallet(engine)
    wallet.upsert_plan("crash-free", 0)
    for i in range(ACCOUNTS):
        account = wallet.create_account(f"a{i}", "crash-free", f"create-{i}").account.id
        wallet.grant(account, "purchased", 10 * D, f"seed-{i}")
        webhooks.create_endpoint(engine, settings, account, hook_url)
        with engine.begin() as conn:
            card = "pm_card_chargeDeclined" if i == 3 else "pm_card_visa"
            rc.set_payment_method(conn, account, customer=f"cus_{i}", payment_method=card, now=0)
            rc.configure(conn, account, enabled=True, threshold=5 * D, amount=20 * D, now=0)
        wallet.charge(account, 6 * D, f"use-{i}")


def _worker(db_url: str, stripe_base: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TALKTIME_DATABASE_URL": db_url,
        "TALKTIME_CONFIG": "",
        "TALKTIME_PAYMENT_PROVIDER": "stripe",
        "TALKTIME_STRIPE_API_KEY": "sk_test_crash",
        "TALKTIME_STRIPE_API_BASE": stripe_base,
        "TALKTIME_WEBHOOKS_ALLOW_PRIVATE": "true",
        "TALKTIME_RECHARGE_MAX_DECLINES": "1",  # a decline turns it off: no next recharge
        "TALKTIME_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "talktime", "worker", "--lease-seconds", "1"]
    return subprocess.Popen(
        [*cmd, "--poll-seconds", "0.05"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _kill_when(proc: subprocess.Popen[bytes], moment: object) -> None:
    deadline = time.monotonic() + 60
    while not moment() and proc.poll() is None:  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _settled(engine: sa.Engine) -> bool:
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        left = [
            sa.select(sa.func.count()).where(outbox.c.delivered_at.is_(None)),
            sa.select(sa.func.count()).where(webhook_deliveries.c.state != "delivered"),
            sa.select(sa.func.count()).where(recharges.c.state.in_(("pending", "processing"))),
        ]
        return all(conn.execute(q).scalar_one() == 0 for q in left)


def _running_jobs(engine: sa.Engine) -> list[str]:
    return [job.kind for job in list_jobs(engine, ("running",))]


@pytest.mark.slow
def test_a_worker_killed_while_paying_and_delivering_loses_and_doubles_nothing(
    db_url: str, engine: sa.Engine
) -> None:
    settings = Settings(database_url=db_url, webhooks_allow_private=True)  # type: ignore[arg-type]
    seen: Seen
    with fake_stripe() as (base, seen), receiver([200]) as hook:
        _accounts(engine, settings, hook.url)
        # killed just after Stripe took the first payment, then after the first webhook arrived
        _kill_when(_worker(db_url, base), lambda: seen.intents_created > 0)
        with engine.begin() as conn:  # five minutes pass: the killed payments' leases run out
            conn.execute(
                recharges.update()
                .where(recharges.c.state == "processing")
                .values(next_attempt_at=0)
            )
        _kill_when(_worker(db_url, base), lambda: len(hook.ids()) > 0)
        with engine.begin() as conn:
            conn.execute(
                recharges.update()
                .where(recharges.c.state == "processing")
                .values(next_attempt_at=0)
            )
        last = _worker(db_url, base)
        try:
            # Everything delivered can come before a killed worker's lease (1 s) runs out:
            # wait for its job to be taken over and finished too, not only for the deliveries.
            wait_for(lambda: _settled(engine) and not _running_jobs(engine), timeout=90)
        finally:
            last.send_signal(signal.SIGTERM)
            assert last.wait(timeout=60) == 0
        received = hook.ids()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(recharges)).all()
        granted = Counter(
            conn.execute(
                sa.select(ledger.c.idempotency_key).where(ledger.c.kind == "recharge")
            ).scalars()
        )
        events = set(conn.execute(sa.select(webhook_events.c.id)).scalars())
    succeeded = {r.idempotency_key for r in rows if r.state == "succeeded"}
    paid = {key for key, (status, _) in seen.replies.items() if status == 200}
    assert succeeded
    assert paid == succeeded  # every payment Stripe took was granted
    assert granted == dict.fromkeys(succeeded, 1)  # and granted once
    assert seen.intents_created == len(seen.replies)  # no key made two payments
    assert {r.state for r in rows} <= {"succeeded", "declined"}
    assert events
    assert set(received) == events  # every event reached the receiver
    assert _running_jobs(engine) == []  # the killed workers' jobs were taken over and finished
    assert Wallet(engine).verify() == []
