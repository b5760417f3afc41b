"""Tables of the billing API: users and roles, API keys, messages and calls.

Money columns are BIGINT micro-units; times are BIGINT epoch microseconds (UTC), as in the
wallet. Every row carries the `account_id` it belongs to (NULL only for an admin API key).
"""

from __future__ import annotations

import sqlalchemy as sa

from talktime.store.tables import metadata

KEY = sa.String(40)
ACCOUNT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.BigInteger  # epoch microseconds, UTC, as in the wallet

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", KEY, primary_key=True),
    sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("restrictions", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", TIME, nullable=False),
)
"""`restrictions`: space-separated permissions an admin took away from the user."""

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", KEY, primary_key=True),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=True, index=True),
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("revoked_at", TIME, nullable=True),
    sa.CheckConstraint("admin OR account_id IS NOT NULL", name="owner"),
    sa.Index("ix_api_keys_created_at_id", "created_at", "id"),  # 0010: key lists by page
)

messages = sa.Table(
    "messages",
    metadata,
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
    sa.Index("ix_messages_account_id_created_at", "account_id", "created_at"),
)
"""`lines`: the priced lines as JSON (money as decimal strings)."""

calls = sa.Table(
    "calls",
    metadata,
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
    sa.Index("ix_calls_account_id_authorized_at", "account_id", "authorized_at"),
)
"""`state`: authorized, completed, voided. `legs`: the priced legs as JSON once completed."""

api_requests = sa.Table(
    "api_requests",
    metadata,
    sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("operation", sa.String(40), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Index("ix_api_requests_created_at", "created_at"),
    # Key first: consecutive keys share index pages across accounts (migration 0006).
    sa.PrimaryKeyConstraint("key", "account_id"),
)
"""The response of every successful money-moving request, by `Idempotency-Key`, for replays."""

account_cards = sa.Table(
    "account_cards",
    metadata,
    sa.Column("account_id", ACCOUNT, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("card", sa.String(64), nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
)
"""The rate card an account is priced with (accounts without a row use the configured default)."""
