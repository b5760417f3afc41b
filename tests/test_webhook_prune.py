"""Finished webhook deliveries (delivered, failed, skipped) and their attempt logs are deleted
once older than `webhooks_retention_days` (30 by default) by the worker's hourly
`webhooks.prune`, and then the events of that age with no delivery left; pending ones stay
whatever their age, with their events, and younger ones stay. Until 1 Dec nothing was ever
deleted, and events not until the second session of 1 Dec. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime.ops import registry, tasks, webhooks
from talktime.ops.clock import HOUR, now_us
from talktime.store.ops_tables import webhook_attempts, webhook_deliveries, webhook_events
from talktime.wallet import Wallet

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


def _events(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(webhook_events.c.id)).scalars())


def _event_of(engine: sa.Engine, delivery: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(webhook_deliveries.c.event_id).where(webhook_deliveries.c.id == delivery)
            ).scalar_one()
        )


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
    events = {i: _event_of(engine, i) for i in ids}
    assert webhooks.prune(engine, 30 * DAY, now=now) == (3, 3)
    deliveries, attempted = _left(engine)
    assert deliveries == {ids[3], ids[4], ids[5]}  # pending, and the younger two
    assert attempted == deliveries
    assert _events(engine) == {events[i] for i in deliveries}
    assert webhooks.prune(engine, 30 * DAY, now=now) == (0, 0)


def test_old_events_without_deliveries_go_and_young_ones_or_delivered_ones_stay(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "PRUNE_BATCH", 2)  # several transactions
    account = make_account(engine)  # no endpoint: events get no delivery at all
    now = now_us()
    with engine.begin() as conn:
        old = [
            webhooks.record_event(conn, account, "balance.low", {"n": n}, now=now - 31 * DAY)
            for n in range(5)
        ]
        young = webhooks.record_event(conn, account, "balance.low", {}, now=now - 29 * DAY)
    webhooks.create_endpoint(engine, settings_for(engine), account, "http://127.0.0.1:9/hooks")
    with engine.begin() as conn:  # old, but its delivery is pending: it stays
        pending = webhooks.record_event(conn, account, "balance.low", {}, now=now - 90 * DAY)
    assert None not in old
    assert young is not None
    assert pending is not None
    assert webhooks.prune(engine, 30 * DAY, now=now) == (0, 5)
    assert _events(engine) == {young, pending}
    assert len(_left(engine)[0]) == 1


def test_an_outbox_event_is_not_recorded_again_after_its_webhook_event_was_pruned(
    engine: sa.Engine,
) -> None:
    """The outbox row is marked dispatched in the transaction that copies it: pruning the copy
    does not make the worker copy it again."""
    account = make_account(engine)
    with Wallet(engine) as wallet:
        wallet.set_low_balance_threshold(account, 5_000_000, key="low")
        wallet.grant(account, "purchased", 6_000_000, key="g")
        wallet.charge(account, 2_000_000, key="c")  # balance.low into the outbox
    later = now_us() + 31 * DAY
    assert tasks.dispatch_outbox(engine, "test") >= 1
    copied = _events(engine)
    assert copied
    assert webhooks.prune(engine, 30 * DAY, now=later).events == len(copied)
    assert tasks.dispatch_outbox(engine, "test", now=later) == 0
    assert _events(engine) == set()


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
