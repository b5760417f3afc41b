"""Tables for phone-number rentals, auto-recharge and the monthly cycle's bookkeeping.

Money is BIGINT micro-units and every time BIGINT epoch microseconds (UTC), as in the wallet
tables. Every table carries `account_id`.
"""

from __future__ import annotations

import sqlalchemy as sa

from talktime.store.tables import metadata
from talktime.store.wallet_tables import ID, MONEY, TIME

phone_numbers = sa.Table(
    "phone_numbers",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", ID, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("e164", sa.String(20), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("number_type", sa.String(16), nullable=False),
    sa.Column("sms_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("voice_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("monthly_price", MONEY, nullable=False),
    sa.Column("rate_ref", sa.String(200), nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("suspended_at", TIME, nullable=True),
    sa.Column("released_at", TIME, nullable=True),
    sa.CheckConstraint("status IN ('active', 'suspended', 'released')", name="status_known"),
    sa.CheckConstraint("monthly_price >= 0", name="price_not_negative"),
    sa.Index("ix_phone_numbers_account_id", "account_id"),
    # A number belongs to at most one account until it is released.
    sa.Index(
        "uq_phone_numbers_e164_held",
        "e164",
        unique=True,
        sqlite_where=sa.text("status <> 'released'"),
        postgresql_where=sa.text("status <> 'released'"),
    ),
)

recharge_settings = sa.Table(
    "recharge_settings",
    metadata,
    sa.Column("account_id", ID, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("threshold", MONEY, nullable=False),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("customer", sa.String(200), nullable=True),
    sa.Column("payment_method", sa.String(200), nullable=True),
    sa.Column("consecutive_declines", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled_reason", sa.String(200), nullable=True),
    sa.Column("updated_at", TIME, nullable=False),
    sa.CheckConstraint("threshold >= 0", name="threshold_not_negative"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
)

recharges = sa.Table(
    "recharges",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", ID, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TIME, nullable=False),
    sa.Column("claimed_at", TIME, nullable=True),
    sa.Column("provider", sa.String(16), nullable=True),
    sa.Column("provider_reference", sa.String(200), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("grant_id", ID, nullable=True),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("finished_at", TIME, nullable=True),
    sa.CheckConstraint(
        "state IN ('pending', 'processing', 'succeeded', 'declined', 'canceled')",
        name="state_known",
    ),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.UniqueConstraint("account_id", "sequence"),
    # At most one recharge in flight per account.
    sa.Index(
        "uq_recharges_in_flight",
        "account_id",
        unique=True,
        sqlite_where=sa.text("state IN ('pending', 'processing')"),
        postgresql_where=sa.text("state IN ('pending', 'processing')"),
    ),
    # The worker's queue: due recharges in time order.
    sa.Index(
        "ix_recharges_due",
        "next_attempt_at",
        sqlite_where=sa.text("state IN ('pending', 'processing')"),
        postgresql_where=sa.text("state IN ('pending', 'processing')"),
    ),
)

cycle_runs = sa.Table(
    "cycle_runs",
    metadata,
    sa.Column("account_id", ID, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("period_start", TIME, primary_key=True),
    sa.Column("period_end", TIME, nullable=False),
    sa.Column("expired", MONEY, nullable=False),
    sa.Column("granted", MONEY, nullable=False),
    sa.Column("rentals_charged", MONEY, nullable=False),
    sa.Column("numbers_suspended", sa.Integer, nullable=False),
    sa.Column("ran_at", TIME, nullable=False),
)
"""One row per account and period the monthly cycle opened: the proof it ran exactly once."""
