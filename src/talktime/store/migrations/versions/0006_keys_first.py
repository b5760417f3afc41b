"""Idempotency records keyed by (key, account) instead of (account, key).

Most clients make their keys in time order (a counter, a ULID, a UUIDv7). With the key first,
the records of consecutive requests sit on the same index page whatever account they belong
to, so a commit writes one page for them, not one page per account touched; random keys
(UUIDv4) land at random either way. Every lookup names both columns, so either order finds a
record in one probe.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {"idempotency": "pk_idempotency", "api_requests": "pk_api_requests"}


def _primary_key(columns: list[str]) -> None:
    for table, name in TABLES.items():
        # SQLite cannot alter a primary key: batch mode copies the table into a new one.
        with op.batch_alter_table(table, recreate="auto") as batch:
            batch.drop_constraint(name, type_="primary")
            batch.create_primary_key(name, columns)


def upgrade() -> None:
    """Primary keys (key, account_id)."""
    _primary_key(["key", "account_id"])


def downgrade() -> None:
    """Primary keys (account_id, key) again."""
    _primary_key(["account_id", "key"])
