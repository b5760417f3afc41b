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


def test_idempotency_records_are_keyed_by_key_then_account(engine: sa.Engine) -> None:
    # Key first, so consecutive keys of different accounts share index pages (migration 0006).
    inspector = sa.inspect(engine)
    for table in ("idempotency", "api_requests"):
        assert inspector.get_pk_constraint(table)["constrained_columns"] == ["key", "account_id"]


def test_the_key_first_migration_keeps_the_records_both_ways(engine: sa.Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    assert sa.inspect(engine).get_pk_constraint("idempotency")["constrained_columns"] == [
        "account_id",
        "key",
    ]
    row = {"account_id": 7, "key": "k-1", "operation": "charge", "fingerprint": "f"}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO idempotency (account_id, key, operation, fingerprint, response, "
                "created_at) VALUES (:account_id, :key, :operation, :fingerprint, '{}', 1)"
            ),
            row,
        )
    upgrade(engine)
    assert sa.inspect(engine).get_pk_constraint("idempotency")["constrained_columns"] == [
        "key",
        "account_id",
    ]
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT account_id, key, operation FROM idempotency"))
        assert kept.all() == [(7, "k-1", "charge")]
