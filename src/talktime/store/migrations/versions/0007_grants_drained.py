"""`grants.drained`, and the live-grants index partial on it instead of on `remaining > 0`.

A charge updates `grants.remaining`. With `ix_grants_live` partial on `remaining > 0`, SQLite
rewrote the grant's index entry on every charge (a partial index whose condition names an
updated column is always rewritten: one WAL page more per charge), and PostgreSQL could not make
the update HOT (each charge added an entry to every index of `grants`). `drained` marks a grant
with nothing left; `remaining` only ever falls, so it is set once, by the write that empties
the grant, and the common update leaves the index alone.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _live_index(postgresql_where: str, sqlite_where: str) -> None:
    op.drop_index("ix_grants_live", table_name="grants")
    op.create_index(
        "ix_grants_live",
        "grants",
        ["account_id", "priority"],
        sqlite_where=sa.text(sqlite_where),
        postgresql_where=sa.text(postgresql_where),
    )


def upgrade() -> None:
    """Add `grants.drained` (true where nothing is left) and move the live index onto it."""
    op.add_column(
        "grants", sa.Column("drained", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.execute(sa.text("UPDATE grants SET drained = :yes WHERE remaining = 0").bindparams(yes=True))
    _live_index("NOT drained", "drained = 0")


def downgrade() -> None:
    """The live index on `remaining > 0` again, without `drained`."""
    _live_index("remaining > 0", "remaining > 0")
    # In place (SQLite 3.35+ drops a column itself): copying `grants` into a new table would
    # drop a table the ledger's foreign keys point at.
    op.drop_column("grants", "drained")
