"""Billing API: users and roles, API keys, messages and calls.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.String(40)
ACCOUNT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.BigInteger  # epoch microseconds, UTC, as in the wallet


def upgrade() -> None:
    """Create users, api_keys, messages, calls, api_requests, account_cards."""
    op.create_table(
        "users",
        sa.Column("id", KEY, primary_key=True),
        sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("restrictions", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_users_account_id", "users", ["account_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", KEY, primary_key=True),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.CheckConstraint("admin OR account_id IS NOT NULL", name="ck_api_keys_owner"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "messages",
        sa.Column("id", KEY, primary_key=True),
        sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("user_id", KEY, nullable=True),
        sa.Column("from_number", sa.String(20), nullable=False),
        sa.Column("to_number", sa.String(20), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("encoding", sa.String(10), nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("lines", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_messages_account_id_created_at", "messages", ["account_id", "created_at"])
    op.create_table(
        "calls",
        sa.Column("id", KEY, primary_key=True),
        sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("user_id", KEY, nullable=True),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("from_number", sa.String(20), nullable=False),
        sa.Column("to_number", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("hold_id", ACCOUNT, nullable=True),
        sa.Column("card", sa.String(120), nullable=False),
        sa.Column("authorized_amount", sa.BigInteger, nullable=False),
        sa.Column("max_duration_seconds", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=True),
        sa.Column("uncollected", sa.BigInteger, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("legs", sa.Text, nullable=True),
        sa.Column("authorized_at", TIME, nullable=False),
        sa.Column("extended_at", TIME, nullable=True),
        sa.Column("completed_at", TIME, nullable=True),
    )
    op.create_index("ix_calls_account_id_authorized_at", "calls", ["account_id", "authorized_at"])
    op.create_table(
        "api_requests",
        sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "key", name="pk_api_requests"),
    )
    op.create_index("ix_api_requests_created_at", "api_requests", ["created_at"])
    op.create_table(
        "account_cards",
        sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("card", sa.String(64), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_account_cards"),
    )


def downgrade() -> None:
    """Drop the billing API's tables."""
    for table in ("account_cards", "api_requests", "calls", "messages", "api_keys", "users"):
        op.drop_table(table)
