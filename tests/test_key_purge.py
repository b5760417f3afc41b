"""Idempotency keys are kept 30 days, then the worker's `idempotency.purge` task forgets them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from talktime.config import Settings
from talktime.ops import registry, tasks
from talktime.service import idempotency as request_keys
from talktime.store.api_tables import api_requests
from talktime.store.wallet_tables import idempotency
from talktime.wallet import Wallet
from talktime.wallet.periods import to_micros

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_purge_forgets_keys_older_than_thirty_days_and_keeps_the_rest(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("startup", 2_000_000, now=NOW - timedelta(days=60))
    account = wallet.create_account("Acme", "startup", "acct-1", now=NOW - timedelta(days=60))
    account_id = account.account.id
    wallet.grant(account_id, "purchased", 1_000_000, "topup", now=NOW - timedelta(days=40))
    wallet.charge(account_id, 10_000, "old", now=NOW - timedelta(days=31))
    wallet.charge(account_id, 10_000, "recent", now=NOW - timedelta(days=29))
    with engine.begin() as conn:
        for key, age in (("old-request", 31), ("recent-request", 29)):
            conn.execute(
                api_requests.insert().values(
                    account_id=account_id,
                    key=key,
                    operation="message.send",
                    fingerprint="f" * 64,
                    status=201,
                    response="{}",
                    created_at=to_micros(NOW - timedelta(days=age)),
                )
            )
    assert "idempotency.purge" in registry.PERIODIC

    ctx = registry.JobContext(engine, Settings(), "test-worker", lambda: to_micros(NOW))
    tasks.purge_keys(ctx, None)  # type: ignore[arg-type]

    with engine.connect() as conn:
        kept = set(conn.execute(sa.select(idempotency.c.key)).scalars())
        kept_requests = set(conn.execute(sa.select(api_requests.c.key)).scalars())
    assert {"old", "recent"} & kept == {"recent"}
    assert kept_requests == {"recent-request"}


def test_a_backlog_is_purged_in_transactions_of_five_thousand_oldest_first(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a backlog went in one DELETE: SQLite's write lock, and every send, waited for all of it
    monkeypatch.setattr(tasks, "PURGE_BATCH", 7)
    wallet = Wallet(engine)
    wallet.upsert_plan("startup", 0, now=NOW - timedelta(days=60))
    account = wallet.create_account("Acme", "startup", "a", now=NOW - timedelta(days=60))
    old = to_micros(NOW - timedelta(days=31))
    rows = [
        {
            "account_id": account.account.id,
            "key": f"k{i:02}",
            "operation": "message.send",
            "fingerprint": "f" * 64,
            "status": 201,
            "response": "{}",
            "created_at": old + i,
        }
        for i in range(20)
    ]
    rows[-1]["created_at"] = to_micros(NOW)  # a fresh one stays
    with engine.begin() as conn:
        conn.execute(api_requests.insert(), list(reversed(rows)))  # not stored in age order
    with engine.begin() as conn:  # one batch alone takes the seven oldest
        assert request_keys.purge(conn, to_micros(NOW), limit=7) == 7
    with engine.connect() as conn:
        left = sorted(conn.execute(sa.select(api_requests.c.key)).scalars())
    assert left == [f"k{i:02}" for i in range(7, 20)]
    commits: list[int] = []

    def count(_conn: sa.Connection) -> None:
        commits.append(1)

    sa.event.listen(engine, "commit", count)
    try:
        ctx = registry.JobContext(engine, Settings(), "test-worker", lambda: to_micros(NOW))
        tasks.purge_keys(ctx, None)  # type: ignore[arg-type]
    finally:
        sa.event.remove(engine, "commit", count)
    with engine.connect() as conn:
        kept = list(conn.execute(sa.select(api_requests.c.key)).scalars())
    assert kept == ["k19"]
    # the wallet's account-creation record, then 7 + 5 stored answers (the last batch short:
    # done)
    assert len(commits) == 1 + 2
