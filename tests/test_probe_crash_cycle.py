"""`talktime cycle run` SIGKILLed mid-way, then run again: every account ends in the same place
as after one uninterrupted run, each period's free credit granted once and each number's rent
charged once per period, and the wallet verifies clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from talktime.store.recharge_tables import cycle_runs
from talktime.store.wallet_tables import grants, ledger
from talktime.wallet import Wallet, rentals
from talktime.wallet.periods import to_micros

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NOW = "2026-07-01T00:00:00Z"
PERIODS = 4  # April, May, June, July
ACCOUNTS = 16
NUMBERS = 2


def _env(db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "TALKTIME_DATABASE_URL": db_url,
        "TALKTIME_CONFIG": "",
        "TALKTIME_LOG_LEVEL": "WARNING",
    }


def _accounts(engine: sa.Engine) -> list[int]:
    """Accounts from T0 with free credit, some paid credit and two rented numbers each."""
    wallet = Wallet(engine)
    wallet.upsert_plan("crash-pro", 3_000_000, now=T0)
    ids = []
    for i in range(ACCOUNTS):
        account = wallet.create_account(f"a{i}", "crash-pro", f"create-{i}", now=T0).account.id
        if i % 4:
            wallet.grant(account, "purchased", i * 400_000, f"buy-{i}", now=T0)
        with engine.begin() as conn:
            for k in range(NUMBERS):
                rentals.add_number(
                    conn,
                    account,
                    f"+1415777{i:02d}{k:02d}",
                    country="US",
                    number_type="local",
                    monthly_price=1_150_000,
                    rate_ref="numbers-2026-01:US:local",
                    now=to_micros(T0 + timedelta(days=k)),
                    sms_enabled=True,
                )
        ids.append(account)
    return ids


def _opened(engine: sa.Engine) -> int:
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(cycle_runs)).scalar_one())


def _cycle(db_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "talktime", "cycle", "run", "--now", NOW],
        env=_env(db_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_a_cycle_run_killed_mid_way_finishes_on_the_next_run_with_nothing_doubled(
    db_url: str, engine: sa.Engine
) -> None:
    ids = _accounts(engine)
    total = ACCOUNTS * PERIODS
    for at_least in (total // 5, total // 2):  # two kills, at different moments
        proc = _cycle(db_url)
        deadline = time.monotonic() + 60
        while _opened(engine) < at_least and proc.poll() is None:
            assert time.monotonic() < deadline, "the cycle made no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < _opened(engine) < total, "killed mid-way"
    done = subprocess.run(
        [sys.executable, "-m", "talktime", "cycle", "run", "--now", NOW],
        env=_env(db_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with engine.connect() as conn:
        runs = Counter(conn.execute(sa.select(cycle_runs.c.account_id)).scalars())
        free = Counter(
            conn.execute(
                sa.select(grants.c.account_id).where(grants.c.kind == "free_monthly")
            ).scalars()
        )
        rents = Counter(
            conn.execute(
                sa.select(ledger.c.idempotency_key).where(ledger.c.idempotency_key.like("rental:%"))
            ).scalars()
        )
    assert runs == dict.fromkeys(ids, PERIODS)
    assert free == dict.fromkeys(ids, PERIODS + 1)  # the creation period's and one per run
    assert set(rents.values()) == {1}
    assert len(rents) == ACCOUNTS * NUMBERS * PERIODS  # $3 free covers $2.30 of rent
    # the invariants as of the cycle's time (a later one would see July's credit unexpired)
    assert Wallet(engine).verify(datetime.fromisoformat(NOW)) == []
