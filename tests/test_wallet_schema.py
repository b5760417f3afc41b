"""Wallet schema: the hand-written migration creates exactly the tables the code declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from talktime.store import upgrade
from talktime.store.migrate import alembic_config
from talktime.store.tables import metadata


def test_migration_matches_the_declared_tables(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_wallet_migration_downgrades_and_upgrades_again(engine: sa.Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert "ledger" not in sa.inspect(engine).get_table_names()
    upgrade(engine)
    assert {"accounts", "grants", "ledger", "holds", "idempotency", "outbox"} <= set(
        sa.inspect(engine).get_table_names()
    )
