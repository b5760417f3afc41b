"""Several workers at once: each due recharge is paid once and each period is opened once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import sqlalchemy as sa

from talktime.config import Settings
from talktime.store.recharge_tables import cycle_runs
from talktime.wallet import recharge as rc
from talktime.wallet.cycle import run_cycle
from talktime.wallet.payments import TestProvider
from wallet_helpers import PLAN, T0, make_wallet

D = 1_000_000
WORKERS = 4
ACCOUNTS = 12


def test_concurrent_workers_pay_each_recharge_exactly_once(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    ids = []
    for i in range(ACCOUNTS):
        account = wallet.create_account(f"a{i}", "free", f"create-{i}").account.id
        wallet.grant(account, "purchased", 10 * D, f"seed-{i}")
        with engine.begin() as conn:
            rc.configure(conn, account, enabled=True, threshold=5 * D, amount=20 * D, now=0)
        wallet.charge(account, 6 * D, f"c-{i}")
        ids.append(account)
    provider = TestProvider()
    cfg = Settings()

    def worker(_: int) -> list[rc.RechargeOutcome]:
        return rc.process_recharges(engine, provider, T0, batch=3, settings=cfg)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(worker, range(WORKERS)))
    rc.process_recharges(engine, provider, T0, settings=cfg)  # whatever is left
    keys = [r.idempotency_key for r in provider.attempts]
    assert sorted(keys) == sorted(f"recharge:{a}:1" for a in ids)
    for account in ids:
        assert wallet.balance(account).paid == 24 * D
    assert wallet.verify() == []


def test_concurrent_cycle_runs_open_each_period_once(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    for i in range(ACCOUNTS):
        wallet.create_account(f"a{i}", PLAN, f"create-{i}")
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with ThreadPoolExecutor(WORKERS) as pool:
        runs = [
            r for batch in pool.map(lambda _: run_cycle(engine, now), range(WORKERS)) for r in batch
        ]
    assert len(runs) == ACCOUNTS * 3
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cycle_runs)).scalar() == (
            ACCOUNTS * 3
        )
    assert wallet.verify(now) == []
