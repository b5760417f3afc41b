"""The work the worker knows: outbox dispatch, webhook attempts, job pruning, and the wallet's
periodic functions (hold expiry, monthly cycle, auto-recharges) when this build has them.

Importing this module registers everything; a wallet function that is missing is recorded as
unavailable with the reason, so `talktime worker --list` shows what will not run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from talktime.ops import jobs, registry, webhooks
from talktime.ops.clock import HOUR, MINUTE, SECOND, now_us, to_datetime
from talktime.store.ops_tables import jobs as jobs_table
from talktime.store.wallet_tables import outbox

OUTBOX_BATCH = 500
KEEP_DONE_JOBS_US = 24 * HOUR


def dispatch_outbox(engine: sa.Engine, worker: str, now: int | None = None) -> int:
    """Turn undelivered wallet outbox events into webhook events and deliveries, once each.

    Rows are claimed with SKIP LOCKED (PostgreSQL) or under the write lock (SQLite) and marked
    delivered in the same transaction, so two workers never dispatch the same event; the event id
    (`evt_<outbox id>`) makes a replay harmless anyway."""
    now = now_us() if now is None else now
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(outbox.c.id, outbox.c.account_id, outbox.c.type, outbox.c.payload)
            .add_columns(outbox.c.created_at)
            .where(outbox.c.delivered_at.is_(None))
            .order_by(outbox.c.id)
            .limit(OUTBOX_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            webhooks.record_event(
                conn,
                int(row.account_id),
                row.type,
                row.payload,
                event_id=f"evt_{row.id}",
                source="outbox",
                now=now,
                created_at=int(row.created_at),
            )
        if rows:
            conn.execute(
                outbox.update()
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(
                    delivered_at=now,
                    claimed_at=now,
                    claimed_by=worker[:100],
                    attempts=outbox.c.attempts + 1,
                )
            )
    return len(rows)


@registry.handler(webhooks.DELIVER)
def deliver_webhook(ctx: registry.JobContext, job: jobs.Job) -> None:
    """One attempt at one webhook delivery."""
    webhooks.deliver(ctx.engine, ctx.settings, int(job.payload["delivery_id"]), worker=ctx.worker)


@registry.handler("jobs.prune")
def prune_jobs(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Delete finished jobs older than a day (failed ones stay until retried or deleted)."""
    cutoff = ctx.now() - KEEP_DONE_JOBS_US
    with ctx.engine.begin() as conn:
        conn.execute(
            jobs_table.delete().where(
                jobs_table.c.state == "done", jobs_table.c.finished_at < cutoff
            )
        )


registry.periodic("jobs.prune", HOUR, "delete finished jobs older than a day")
registry.tick("webhooks.dispatch", dispatch_outbox, "copy new outbox events to webhook deliveries")


def _wallet_task(kind: str, module: str, name: str, every: int, description: str) -> None:
    """Register `module.name(engine, now)` as periodic job `kind`, or record why it is missing."""
    registry.periodic(kind, every, description)
    try:
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        registry.unavailable(kind, f"{module}.{name} is not part of this build")
        return

    def run(ctx: registry.JobContext, _job: jobs.Job) -> None:
        fn(ctx.engine, to_datetime(ctx.now()))

    registry.handler(kind)(run)


_wallet_task("wallet.expire_holds", "talktime.wallet", "expire_holds", MINUTE, "expire holds")
_wallet_task("wallet.run_cycle", "talktime.wallet", "run_cycle", 5 * MINUTE, "monthly cycle")
_wallet_task(
    "recharge.process", "talktime.wallet", "process_recharges", 10 * SECOND, "auto-recharges"
)
