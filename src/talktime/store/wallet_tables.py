"""Wallet tables: accounts, plans, grants, the append-only ledger, holds, idempotency records,
period usage counters and the event outbox.

Money is BIGINT micro-units; every time is BIGINT epoch microseconds (UTC). Every table except
`plans` (reference data synced from the rate card) carries `account_id`.
"""

from __future__ import annotations

import sqlalchemy as sa

from talktime.store.tables import constant, metadata

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Autoincrement key: BIGINT on PostgreSQL, the rowid alias INTEGER on SQLite."""

MONEY = sa.BigInteger
TIME = sa.BigInteger  # epoch microseconds, UTC

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("monthly_free_credit", MONEY, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.CheckConstraint("monthly_free_credit >= 0", name="free_credit_not_negative"),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="USD"),
    sa.Column("plan", sa.String(64), sa.ForeignKey("plans.name"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("anchor_at", TIME, nullable=False),
    sa.Column("period_start", TIME, nullable=False),
    sa.Column("period_end", TIME, nullable=False),
    sa.Column("monthly_limit", MONEY, nullable=True),
    sa.Column("low_balance_threshold", MONEY, nullable=True),
    sa.Column("created_at", TIME, nullable=False),
    sa.CheckConstraint("status IN ('active', 'past_due', 'canceled')", name="status_known"),
    sa.CheckConstraint("monthly_limit IS NULL OR monthly_limit >= 0", name="limit_not_negative"),
    sa.Index("ix_accounts_period_end", "period_end"),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", ID, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("original", MONEY, nullable=False),
    sa.Column("remaining", MONEY, nullable=False),
    sa.Column("held", MONEY, nullable=False, server_default="0"),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("effective_at", TIME, nullable=False),
    sa.Column("expires_at", TIME, nullable=True),
    sa.Column("period_start", TIME, nullable=True),
    sa.Column("source", sa.String(200), nullable=True),
    sa.Column("created_at", TIME, nullable=False),
    # True once the grant has no credit left (used, expired or refunded): `remaining` only
    # ever falls, so a drained grant never comes back. Set by the write that empties it.
    sa.Column("drained", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint(
        "kind IN ('free_monthly', 'purchased', 'promotional', 'refund')", name="kind_known"
    ),
    sa.CheckConstraint("remaining >= 0", name="remaining_not_negative"),
    sa.CheckConstraint("held >= 0 AND held <= remaining", name="held_within_remaining"),
    sa.CheckConstraint("remaining <= original", name="remaining_within_original"),
    # Hot path: the live grants of one account, never the account's spent history. The
    # condition names `drained`, not `remaining`: a charge's UPDATE of `remaining` then leaves
    # the index alone (SQLite rewrites a partial index whose condition names an updated column;
    # PostgreSQL cannot make such an update HOT), one page less per charge (migration 0007).
    sa.Index(
        "ix_grants_live",
        "account_id",
        "priority",
        sqlite_where=sa.text("drained = 0"),
        postgresql_where=sa.text("NOT drained"),
    ),
    # One free-credit grant per account and period: the monthly cycle is idempotent.
    sa.Index(
        "uq_grants_free_period",
        "account_id",
        "period_start",
        unique=True,
        sqlite_where=sa.text("kind = 'free_monthly'"),
        postgresql_where=sa.text("kind = 'free_monthly'"),
    ),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", sa.String(40), nullable=False),
    sa.Column("account_id", ID, nullable=False),
    sa.Column("grant_id", ID, nullable=True),
    sa.Column("hold_id", ID, nullable=True),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("lines", sa.JSON, nullable=True),
    sa.Column("created_at", TIME, nullable=False),
    sa.Index("ix_ledger_account_id_id", "account_id", "id"),
    sa.Index("ix_ledger_transaction_id", "transaction_id"),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", ID, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("expires_at", TIME, nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("closed_at", TIME, nullable=True),
    sa.CheckConstraint("state IN ('pending', 'settled', 'voided', 'expired')", name="state_known"),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
    sa.Index(
        "ix_holds_pending_expiry",
        "expires_at",
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    ),
    sa.Index("ix_holds_account_id", "account_id"),
)

hold_allocations = sa.Table(
    "hold_allocations",
    metadata,
    sa.Column("hold_id", ID, sa.ForeignKey("holds.id"), primary_key=True),
    sa.Column("grant_id", ID, sa.ForeignKey("grants.id"), primary_key=True),
    sa.Column("account_id", ID, nullable=False),
    sa.Column("amount", MONEY, nullable=False),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
)

idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("account_id", ID, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    # Key first: consecutive keys share index pages across accounts (migration 0006).
    sa.PrimaryKeyConstraint("key", "account_id"),
    sa.Index("ix_idempotency_created_at", "created_at"),
)

usage_periods = sa.Table(
    "usage_periods",
    metadata,
    sa.Column("account_id", ID, primary_key=True),
    sa.Column("period_start", TIME, primary_key=True),
    sa.Column("paid_used", MONEY, nullable=False, server_default="0"),
    sa.Column("limit_reached", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("paid_used >= 0", name="paid_used_not_negative"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", ID, nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("claimed_at", TIME, nullable=True),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("delivered_at", TIME, nullable=True),
    sa.Index(
        "ix_outbox_undelivered",
        "id",
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    ),
    sa.Index("ix_outbox_account_id", "account_id"),
)


GRANT_LIVE = sa.and_(sa.not_(grants.c.drained), grants.c.remaining > constant(0))
"""A grant with credit left, written so the planner uses `ix_grants_live` (the index's own
condition, a literal `remaining > 0` kept as the truth)."""
