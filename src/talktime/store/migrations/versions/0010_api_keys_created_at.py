"""An index on `api_keys (created_at, id)`, for listing keys a page at a time.

`GET /v1/admin/keys` lists every key oldest first, a page at a time: without this index each
page sorted the whole table (key ids are random, so they cannot order the list themselves).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `ix_api_keys_created_at_id`."""
    op.create_index("ix_api_keys_created_at_id", "api_keys", ["created_at", "id"])


def downgrade() -> None:
    """Drop `ix_api_keys_created_at_id` (the keys stay)."""
    op.drop_index("ix_api_keys_created_at_id", table_name="api_keys")
