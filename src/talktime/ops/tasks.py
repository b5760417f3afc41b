"""The work the worker knows: outbox dispatch, webhook attempts, job pruning, and the wallet's
periodic functions (hold and grant expiry, the monthly cycle, auto-recharges).

Importing this module registers everything; `talktime worker --list` shows it. A queued job whose
kind no handler claims fails with that reason (see `talktime jobs`).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from talktime.ops import jobs, registry, webhooks
from talktime.ops.clock import HOUR, MINUTE, SECOND, now_us, to_datetime
from talktime.service import cards
from talktime.service import idempotency as request_keys
from talktime.store.ops_tables import jobs as jobs_table
from talktime.store.wallet_tables import accounts, outbox
from talktime.store.writer import writing
from talktime.wallet import Wallet
from talktime.wallet import idempotency as wallet_keys
from talktime.wallet.cycle import run_cycle
from talktime.wallet.payments import provider_from_settings
from talktime.wallet.recharge import process_recharges

log = logging.getLogger("talktime.worker")

OUTBOX_BATCH = 100
OUTBOX_PER_TICK = 500
PURGE_BATCH = 5000
KEEP_DONE_JOBS_US = 24 * HOUR


def dispatch_outbox(engine: sa.Engine, worker: str, now: int | None = None) -> int:
    """Turn undelivered wallet outbox events into webhook events and deliveries, once each:
    at most `OUTBOX_PER_TICK` a call, in transactions of at most `OUTBOX_BATCH` (on SQLite
    each holds the write lock, which sends wait for: 500 events in one took 0.3-0.8 s).

    Rows are claimed with SKIP LOCKED (PostgreSQL) or under the write lock (SQLite) and marked
    delivered in the same transaction, so two workers never dispatch the same event; the event id
    (`evt_<outbox id>`) makes a replay harmless anyway. Money in the payload (micro-units) goes
    out as decimal strings with the account's currency (`webhooks.event_data`)."""
    now = now_us() if now is None else now
    done = 0
    while done < OUTBOX_PER_TICK:
        batch = _dispatch_batch(engine, worker, now)
        done += batch
        if batch < OUTBOX_BATCH:
            break
    return done


def _dispatch_batch(engine: sa.Engine, worker: str, now: int) -> int:
    """One transaction of `dispatch_outbox`; how many events it dispatched."""
    with writing(engine) as conn:
        rows = conn.execute(
            sa.select(outbox.c.id, outbox.c.account_id, outbox.c.type, outbox.c.payload)
            .add_columns(outbox.c.created_at)
            .where(outbox.c.delivered_at.is_(None))
            .order_by(outbox.c.id)
            .limit(OUTBOX_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        currencies = _currencies(conn, {int(r.account_id) for r in rows})
        for row in rows:
            webhooks.record_event(
                conn,
                int(row.account_id),
                row.type,
                webhooks.event_data(row.payload, currencies.get(int(row.account_id), "USD")),
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


def _currencies(conn: sa.Connection, account_ids: set[int]) -> dict[int, str]:
    """The currency of each account (read apart: a join would lock account rows too)."""
    if not account_ids:
        return {}
    rows = conn.execute(
        sa.select(accounts.c.id, accounts.c.currency).where(accounts.c.id.in_(account_ids))
    )
    return {int(i): str(c) for i, c in rows}


@registry.handler(webhooks.DELIVER)
def deliver_webhook(ctx: registry.JobContext, job: jobs.Job) -> None:
    """One attempt at one webhook delivery."""
    webhooks.deliver(ctx.engine, ctx.settings, int(job.payload["delivery_id"]), worker=ctx.worker)


@registry.handler("jobs.prune")
def prune_jobs(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Delete finished jobs older than a day (failed ones stay until retried or deleted)."""
    cutoff = ctx.now() - KEEP_DONE_JOBS_US
    with writing(ctx.engine) as conn:
        conn.execute(
            jobs_table.delete().where(
                jobs_table.c.state == "done", jobs_table.c.finished_at < cutoff
            )
        )


registry.periodic("jobs.prune", HOUR, "delete finished jobs older than a day")


@registry.handler("webhooks.sweep")
def sweep_webhooks(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Queue an attempt for overdue pending deliveries whose job was given up."""
    webhooks.sweep(ctx.engine, now=ctx.now())


registry.periodic("webhooks.sweep", 5 * MINUTE, "re-queue webhook deliveries whose job was lost")


@registry.handler("webhooks.prune")
def prune_webhooks(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Delete finished webhook deliveries, their attempts, and the events left without a
    delivery, past the retention."""
    retention = ctx.settings.webhooks_retention_days * 24 * HOUR
    webhooks.prune(ctx.engine, retention, now=ctx.now())


registry.periodic(
    "webhooks.prune",
    HOUR,
    "delete finished webhook deliveries and their events past webhooks_retention_days",
)
registry.tick("webhooks.dispatch", dispatch_outbox, "copy new outbox events to webhook deliveries")


@registry.handler("wallet.expire")
def expire(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Release expired holds and write expiry entries for lapsed grants, after the monthly
    cycle has closed the periods that ended (with each account's card's free credit): a
    period is closed as of its end, with the credit it held then, whichever job runs first.

    The cycle's refusals are left to its own job to log (every 5 minutes, not every minute),
    and a cycle that fails outright is logged and does not stop the expiry: holds are
    released whatever the cycle does."""
    now = to_datetime(ctx.now())
    try:
        run_cycle(ctx.engine, now, plan_credit=cards.plan_credit(ctx.settings), report=False)
    except Exception:
        log.exception("wallet.expire: the monthly cycle failed; expiring holds and grants anyway")
    with Wallet(ctx.engine) as wallet:  # gives its connections back to the pool when done
        wallet.expire_holds(now)
        wallet.expire_grants(now)


@registry.handler("wallet.run_cycle")
def cycle(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Close ended periods: expire free credit, grant the new, charge rentals."""
    run_cycle(ctx.engine, to_datetime(ctx.now()), plan_credit=cards.plan_credit(ctx.settings))


@registry.handler("recharge.process")
def recharge(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Pay the due auto-recharges through the configured payment provider."""
    provider = provider_from_settings(ctx.settings)
    process_recharges(ctx.engine, provider, to_datetime(ctx.now()), settings=ctx.settings)


@registry.handler("idempotency.purge")
def purge_keys(ctx: registry.JobContext, _job: jobs.Job) -> None:
    """Forget idempotency keys older than 30 days: the wallet's and the API's stored responses,
    in transactions of at most `PURGE_BATCH` (a backlog in one held SQLite's write lock, and
    the sends, for as long as it took: 0.55 s for 300,000)."""
    now = ctx.now()
    for purge in (wallet_keys.purge, request_keys.purge):
        while True:
            with writing(ctx.engine) as conn:
                if purge(conn, now, limit=PURGE_BATCH) < PURGE_BATCH:
                    break


registry.periodic("idempotency.purge", HOUR, "forget idempotency keys older than 30 days")
registry.periodic(
    "wallet.expire", MINUTE, "close ended periods, release expired holds, expire lapsed grants"
)
registry.periodic("wallet.run_cycle", 5 * MINUTE, "monthly cycle (free credit, rentals)")
registry.periodic("recharge.process", 5 * SECOND, "pay due auto-recharges")
