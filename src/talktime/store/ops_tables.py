"""Operations tables: the job queue, webhook endpoints, events, deliveries and delivery attempts.

Times are integer epoch microseconds (BIGINT), the same on SQLite and PostgreSQL, so claims and
back-off compare plain integers. Migration 0005 creates these tables; 0008 allows the delivery
state `skipped`; 0009 indexes events by creation time (for their pruning).
"""

from __future__ import annotations

import sqlalchemy as sa

from talktime.store.tables import metadata

#: A BIGINT primary key that still auto-increments on SQLite (where only INTEGER does).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="10"),
    sa.Column("run_at", sa.BigInteger, nullable=False),
    sa.Column("locked_by", sa.String(200)),
    sa.Column("locked_until", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Column("dedupe_key", sa.String(300), unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.BigInteger),
    sa.CheckConstraint("state IN ('pending', 'running', 'done', 'failed')", name="state"),
    sa.Index("ix_jobs_state_run_at", "state", "run_at"),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False, index=True
    ),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("failure_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Every event that is (or was) offered to webhook endpoints: copied from the wallet's outbox or
#: raised by operations itself (e.g. `webhook_endpoint.disabled`). The id is the `webhook-id`.
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("account_id", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_webhook_events_account_id_created_at", "account_id", "created_at"),
    sa.Index("ix_webhook_events_created_at", "created_at"),  # 0009: pruning finds old events
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(80), sa.ForeignKey("webhook_events.id"), nullable=False),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("account_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_start", sa.BigInteger, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger),
    sa.Column("last_response_code", sa.Integer),
    sa.Column("delivered_at", sa.BigInteger),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("event_id", "endpoint_id"),
    sa.CheckConstraint("state IN ('pending', 'delivered', 'failed', 'skipped')", name="state"),
    sa.Index("ix_webhook_deliveries_endpoint_id_state", "endpoint_id", "state"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.BigInteger, sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("response_code", sa.Integer),
    sa.Column("latency_us", sa.BigInteger, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("worker", sa.String(200)),
    sa.Index("ix_webhook_attempts_delivery_id", "delivery_id"),
)
