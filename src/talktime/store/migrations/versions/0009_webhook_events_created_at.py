"""An index on `webhook_events.created_at`, for the worker's pruning of old events.

`webhooks.prune` deletes an event once it is older than the retention and no delivery of it is
left (deliveries go at the same age, see 0008's state `skipped`). Event ids are not ordered by
time (`evt_<outbox id>` as text, or random), so without this index finding the old ones would
read the whole table every hour.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `ix_webhook_events_created_at`."""
    op.create_index("ix_webhook_events_created_at", "webhook_events", ["created_at"])


def downgrade() -> None:
    """Drop `ix_webhook_events_created_at` (the events stay)."""
    op.drop_index("ix_webhook_events_created_at", table_name="webhook_events")
