"""Webhook deliveries may be `skipped`: an event that matched a disabled endpoint.

Until now such an event got no delivery for that endpoint at all, so after re-enabling it there
was nothing to redeliver. A skipped delivery is listed with the endpoint's deliveries and is
never attempted until it is redelivered by hand.

SQLite cannot alter a CHECK constraint: the table is copied into a new one (batch mode). The
attempt log points at it with a foreign key, so its rows are set aside in a temporary table
while the deliveries are rebuilt and put back afterwards (dropping a parent table with children
fails under `foreign_keys=ON`, deferred or not).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The name 0005 gave it (the naming convention applied to a name that already followed it).
CHECK = "ck_webhook_deliveries_ck_webhook_deliveries_state"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _condition(states: Sequence[str]) -> str:
    return "state IN (" + ", ".join(f"'{s}'" for s in states) + ")"


def _deliveries(states: Sequence[str]) -> sa.Table:
    """`webhook_deliveries` as 0005 made it, with `states` allowed (SQLite's copy)."""
    meta = sa.MetaData()
    sa.Table("webhook_events", meta, sa.Column("id", sa.String(80), primary_key=True))
    sa.Table("webhook_endpoints", meta, sa.Column("id", sa.String(40), primary_key=True))
    return sa.Table(
        "webhook_deliveries",
        meta,
        sa.Column("id", BigId, autoincrement=True),
        sa.Column(
            "event_id",
            sa.String(80),
            sa.ForeignKey(
                "webhook_events.id", name="fk_webhook_deliveries_event_id_webhook_events"
            ),
            nullable=False,
        ),
        sa.Column(
            "endpoint_id",
            sa.String(40),
            sa.ForeignKey(
                "webhook_endpoints.id",
                name="fk_webhook_deliveries_endpoint_id_webhook_endpoints",
            ),
            nullable=False,
        ),
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger),
        sa.Column("last_response_code", sa.Integer),
        sa.Column("delivered_at", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint(
            "event_id", "endpoint_id", name="uq_webhook_deliveries_event_id_endpoint_id"
        ),
        sa.CheckConstraint(_condition(states), name=CHECK),
        sa.Index("ix_webhook_deliveries_endpoint_id_state", "endpoint_id", "state"),
    )


def _allow(states: Sequence[str]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(CHECK), "webhook_deliveries", type_="check")
        op.create_check_constraint(op.f(CHECK), "webhook_deliveries", _condition(states))
        return
    op.execute("CREATE TEMPORARY TABLE _webhook_attempts_0008 AS SELECT * FROM webhook_attempts")
    op.execute("DELETE FROM webhook_attempts")
    with op.batch_alter_table(
        "webhook_deliveries", recreate="always", copy_from=_deliveries(states)
    ):
        pass
    op.execute("INSERT INTO webhook_attempts SELECT * FROM _webhook_attempts_0008")
    op.execute("DROP TABLE _webhook_attempts_0008")


def upgrade() -> None:
    """Allow the state `skipped`."""
    _allow(("pending", "delivered", "failed", "skipped"))


def downgrade() -> None:
    """Skipped deliveries become `failed` (never attempted; redelivery still sends them), and the
    state `skipped` is refused again."""
    op.execute("UPDATE webhook_deliveries SET state = 'failed' WHERE state = 'skipped'")
    _allow(("pending", "delivered", "failed"))
