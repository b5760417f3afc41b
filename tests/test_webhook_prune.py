"""Finished webhook deliveries (delivered, failed, skipped) and their attempt logs are deleted
once older than `webhooks_retention_days` (30 by default) by the worker's hourly
`webhooks.prune`; pending ones stay whatever their age, and younger ones stay. Until 1 Dec
nothing was ever deleted. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime.ops import registry, tasks, webhooks
from talktime.ops.clock import HOUR, now_us
from talktime.store.ops_tables import webhook_attempts, webhook_deliveries

from ops_helpers import make_account, settings_for

DAY = 24 * HOUR


def _deliveries(
    engine: sa.Engine,
    account: int,
    endpoint_id: str,
    ages_and_states: list[tuple[int, str]],
    now: int,
) -> list[int]:
    """One event and delivery per (age in days, state), each with one attempt logged."""
    ids = []
    with engine.begin() as conn:
        for n, (age, state) in enumerate(ages_and_states):
            at = now - age * DAY
            webhooks.record_event(conn, account, "balance.low", {"n": n}, now=at)
            delivery = conn.execute(sa.select(sa.func.max(webhook_deliveries.c.id))).scalar_one()
            conn.execute(
                sa.update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery)
                .values(state=state)
            )
            conn.execute(
                webhook_attempts.insert().values(
                    delivery_id=delivery, attempt=1, at=at, outcome="ok", latency_us=1
                )
            )
            ids.append(int(delivery))
    return ids


def _left(engine: sa.Engine) -> tuple[set[int], set[int]]:
    with engine.connect() as conn:
        deliveries = set(conn.execute(sa.select(webhook_deliveries.c.id)).scalars())
        attempted = set(conn.execute(sa.select(webhook_attempts.c.delivery_id)).scalars())
    return deliveries, attempted


@pytest.mark.parametrize("batch", [5000, 1])
def test_finished_deliveries_past_the_retention_go_with_their_attempts(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(webhooks, "PRUNE_BATCH", batch)
    account = make_account(engine)
    endpoint = webhooks.create_endpoint(
        engine, settings_for(engine), account, "http://127.0.0.1:9/hooks"
    )
    now = now_us()
    ids = _deliveries(
        engine,
        account,
        endpoint.id,
        [
            (40, "delivered"),
            (35, "failed"),
            (31, "skipped"),
            (45, "pending"),
            (29, "delivered"),
            (1, "failed"),
        ],
        now,
    )
    assert webhooks.prune(engine, 30 * DAY, now=now) == 3
    deliveries, attempted = _left(engine)
    assert deliveries == {ids[3], ids[4], ids[5]}  # pending, and the younger two
    assert attempted == deliveries
    assert webhooks.prune(engine, 30 * DAY, now=now) == 0


def test_the_worker_prunes_hourly_by_the_retention_setting(engine: sa.Engine) -> None:
    [job] = [j for j in registry.describe() if j["kind"] == "webhooks.prune"]
    assert job["every_seconds"] == 3600
    account = make_account(engine)
    webhooks.create_endpoint(engine, settings_for(engine), account, "http://127.0.0.1:9/hooks")
    now = now_us()
    ids = _deliveries(engine, account, "", [(10, "delivered"), (3, "delivered")], now)
    ctx = registry.JobContext(
        engine, settings_for(engine, webhooks_retention_days=7), "test", lambda: now
    )
    tasks.prune_webhooks(ctx, None)  # type: ignore[arg-type]  # the job row is not read
    assert _left(engine)[0] == {ids[1]}
