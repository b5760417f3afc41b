"""Wallet: accounts, plans, grants, ledger, holds, idempotency, usage counters and the outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Money is BIGINT micro-units; times are BIGINT epoch microseconds (UTC).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the wallet tables and their hot-path indexes."""
    op.create_table(
        "plans",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("monthly_free_credit", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint("monthly_free_credit >= 0", name="ck_plans_free_credit_not_negative"),
        sa.PrimaryKeyConstraint("name", name="pk_plans"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="USD"),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("anchor_at", sa.BigInteger, nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("period_end", sa.BigInteger, nullable=False),
        sa.Column("monthly_limit", sa.BigInteger, nullable=True),
        sa.Column("low_balance_threshold", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'past_due', 'canceled')", name="ck_accounts_status_known"
        ),
        sa.CheckConstraint(
            "monthly_limit IS NULL OR monthly_limit >= 0", name="ck_accounts_limit_not_negative"
        ),
        sa.ForeignKeyConstraint(["plan"], ["plans.name"], name="fk_accounts_plan_plans"),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
    )
    op.create_index("ix_accounts_period_end", "accounts", ["period_end"])
    op.create_table(
        "grants",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("original", sa.BigInteger, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("held", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("effective_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("period_start", sa.BigInteger, nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "kind IN ('free_monthly', 'purchased', 'promotional', 'refund')",
            name="ck_grants_kind_known",
        ),
        sa.CheckConstraint("remaining >= 0", name="ck_grants_remaining_not_negative"),
        sa.CheckConstraint(
            "held >= 0 AND held <= remaining", name="ck_grants_held_within_remaining"
        ),
        sa.CheckConstraint("remaining <= original", name="ck_grants_remaining_within_original"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_grants_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_grants"),
    )
    op.create_index(
        "ix_grants_live",
        "grants",
        ["account_id", "priority"],
        sqlite_where=sa.text("remaining > 0"),
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "uq_grants_free_period",
        "grants",
        ["account_id", "period_start"],
        unique=True,
        sqlite_where=sa.text("kind = 'free_monthly'"),
        postgresql_where=sa.text("kind = 'free_monthly'"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(40), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("grant_id", ID, nullable=True),
        sa.Column("hold_id", ID, nullable=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("lines", sa.JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger"),
    )
    op.create_index("ix_ledger_account_id_id", "ledger", ["account_id", "id"])
    op.create_index("ix_ledger_transaction_id", "ledger", ["transaction_id"])
    op.create_table(
        "holds",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("closed_at", sa.BigInteger, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'settled', 'voided', 'expired')", name="ck_holds_state_known"
        ),
        sa.CheckConstraint("amount >= 0", name="ck_holds_amount_not_negative"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_holds_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
    )
    op.create_index(
        "ix_holds_pending_expiry",
        "holds",
        ["expires_at"],
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index("ix_holds_account_id", "holds", ["account_id"])
    op.create_table(
        "hold_allocations",
        sa.Column("hold_id", ID, nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.CheckConstraint("amount >= 0", name="ck_hold_allocations_amount_not_negative"),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["holds.id"], name="fk_hold_allocations_hold_id_holds"
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name="fk_hold_allocations_grant_id_grants"
        ),
        sa.PrimaryKeyConstraint("hold_id", "grant_id", name="pk_hold_allocations"),
    )
    op.create_table(
        "idempotency",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "key", name="pk_idempotency"),
    )
    op.create_index("ix_idempotency_created_at", "idempotency", ["created_at"])
    op.create_table(
        "usage_periods",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("paid_used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("limit_reached", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("paid_used >= 0", name="ck_usage_periods_paid_used_not_negative"),
        sa.PrimaryKeyConstraint("account_id", "period_start", name="pk_usage_periods"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_at", sa.BigInteger, nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index(
        "ix_outbox_undelivered",
        "outbox",
        ["id"],
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_index("ix_outbox_account_id", "outbox", ["account_id"])


def downgrade() -> None:
    """Drop the wallet tables, dependents first."""
    for table in (
        "outbox",
        "usage_periods",
        "idempotency",
        "hold_allocations",
        "holds",
        "ledger",
        "grants",
        "accounts",
        "plans",
    ):
        op.drop_table(table)
