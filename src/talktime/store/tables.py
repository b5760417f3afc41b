"""The schema as SQLAlchemy Core tables; Alembic migrations create exactly these.

Every table that holds account data carries `account_id`, and money columns are BIGINT micro-units.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


def constant(value: str | int) -> sa.ColumnElement[Any]:
    """``value`` written into the SQL text as a literal instead of a bound parameter.

    A query must repeat a partial index's condition with literal constants for the planner to
    use the index whatever the bound values: with a bound constant SQLite prepares the
    statement again on every execution (about ten times slower on the send path) and a
    PostgreSQL generic plan cannot use the index at all.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return sa.literal_column(str(value))
    if not isinstance(value, str) or not value.replace("_", "").isalnum():
        raise ValueError(f"constant() takes ints and identifier-like strings, not {value!r}")
    return sa.literal_column(f"'{value}'")


def after_row(
    conn: sa.Connection, table: sa.Table, row_id: str, *scope: sa.ColumnElement[bool]
) -> sa.ColumnElement[bool] | None:
    """The rows of ``table`` listed after row ``row_id`` in (created_at, id) order, as a
    condition; None when there is no such row within ``scope``. For tables whose rows are
    never deleted, so a row's place in the list never moves."""
    created_at = conn.execute(
        sa.select(table.c.created_at).where(table.c.id == row_id, *scope)
    ).scalar()
    if created_at is None:
        return None
    return sa.tuple_(table.c.created_at, table.c.id) > sa.tuple_(created_at, row_id)


def purge_older(conn: sa.Connection, table: sa.Table, cutoff: int, limit: int | None = None) -> int:
    """Delete the rows of ``table`` created (`created_at`) before ``cutoff``, only the oldest
    ``limit`` of them when given (picked by the primary key, through the `created_at`
    index); returns how many."""
    older = table.c.created_at < cutoff
    if limit is None:
        return int(conn.execute(sa.delete(table).where(older)).rowcount)
    key = list(table.primary_key.columns)
    oldest = sa.select(*key).where(older).order_by(table.c.created_at).limit(limit)
    # the condition repeated outside: without it PostgreSQL read the whole table for every
    # batch (a hash semi join over a sequential scan) instead of the `created_at` index
    return int(conn.execute(sa.delete(table).where(older, sa.tuple_(*key).in_(oldest))).rowcount)


from talktime.store import (  # noqa: E402 - registers the feature tables
    api_tables,  # noqa: F401
    ops_tables,  # noqa: F401
    recharge_tables,  # noqa: F401
    wallet_tables,  # noqa: F401
)
