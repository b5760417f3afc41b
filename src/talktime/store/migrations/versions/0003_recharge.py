"""Phone numbers, auto-recharge settings and recharges, and the monthly cycle's runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Money is BIGINT micro-units; times are BIGINT epoch microseconds (UTC).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IN_FLIGHT = "state IN ('pending', 'processing')"


def upgrade() -> None:
    """Create the phone-number, recharge and cycle tables."""
    op.create_table(
        "phone_numbers",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("e164", sa.String(20), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("number_type", sa.String(16), nullable=False),
        sa.Column("sms_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("voice_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("monthly_price", sa.BigInteger, nullable=False),
        sa.Column("rate_ref", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("suspended_at", sa.BigInteger, nullable=True),
        sa.Column("released_at", sa.BigInteger, nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'released')", name="ck_phone_numbers_status_known"
        ),
        sa.CheckConstraint("monthly_price >= 0", name="ck_phone_numbers_price_not_negative"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_phone_numbers_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_phone_numbers"),
    )
    op.create_index("ix_phone_numbers_account_id", "phone_numbers", ["account_id"])
    op.create_index(
        "uq_phone_numbers_e164_held",
        "phone_numbers",
        ["e164"],
        unique=True,
        sqlite_where=sa.text("status <> 'released'"),
        postgresql_where=sa.text("status <> 'released'"),
    )
    op.create_table(
        "recharge_settings",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("threshold", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("customer", sa.String(200), nullable=True),
        sa.Column("payment_method", sa.String(200), nullable=True),
        sa.Column("consecutive_declines", sa.Integer, nullable=False, server_default="0"),
        sa.Column("disabled_reason", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint("threshold >= 0", name="ck_recharge_settings_threshold_not_negative"),
        sa.CheckConstraint("amount > 0", name="ck_recharge_settings_amount_positive"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_recharge_settings_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("account_id", name="pk_recharge_settings"),
    )
    op.create_table(
        "recharges",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_at", sa.BigInteger, nullable=True),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("provider_reference", sa.String(200), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("grant_id", ID, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'processing', 'succeeded', 'declined', 'canceled')",
            name="ck_recharges_state_known",
        ),
        sa.CheckConstraint("amount > 0", name="ck_recharges_amount_positive"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_recharges_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recharges"),
        sa.UniqueConstraint("account_id", "sequence", name="uq_recharges_account_id_sequence"),
    )
    op.create_index(
        "uq_recharges_in_flight",
        "recharges",
        ["account_id"],
        unique=True,
        sqlite_where=sa.text(IN_FLIGHT),
        postgresql_where=sa.text(IN_FLIGHT),
    )
    op.create_index(
        "ix_recharges_due",
        "recharges",
        ["next_attempt_at"],
        sqlite_where=sa.text(IN_FLIGHT),
        postgresql_where=sa.text(IN_FLIGHT),
    )
    op.create_table(
        "cycle_runs",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("period_end", sa.BigInteger, nullable=False),
        sa.Column("expired", sa.BigInteger, nullable=False),
        sa.Column("granted", sa.BigInteger, nullable=False),
        sa.Column("rentals_charged", sa.BigInteger, nullable=False),
        sa.Column("numbers_suspended", sa.Integer, nullable=False),
        sa.Column("ran_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_cycle_runs_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("account_id", "period_start", name="pk_cycle_runs"),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("cycle_runs")
    op.drop_index("ix_recharges_due", table_name="recharges")
    op.drop_index("uq_recharges_in_flight", table_name="recharges")
    op.drop_table("recharges")
    op.drop_table("recharge_settings")
    op.drop_index("uq_phone_numbers_e164_held", table_name="phone_numbers")
    op.drop_index("ix_phone_numbers_account_id", table_name="phone_numbers")
    op.drop_table("phone_numbers")
