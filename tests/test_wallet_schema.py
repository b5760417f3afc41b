"""Wallet schema: the hand-written migration creates exactly the tables the code declares."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from talktime.store import upgrade
from talktime.store.migrate import alembic_config
from talktime.store.tables import metadata
from talktime.store.wallet_tables import grants
from talktime.wallet import Wallet, charges
from talktime.wallet.book import Book
from talktime.wallet.periods import to_micros
from wallet_helpers import T0, make_wallet


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


def test_the_live_grants_index_is_partial_on_drained_not_on_remaining(
    engine: sa.Engine,
) -> None:
    # A charge updates `remaining`; an index whose condition names it is rewritten on every
    # charge (migration 0007).
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master").all())
            assert sql["ix_grants_live"].endswith("WHERE drained = 0")
        else:
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_grants_live'"
            ).scalar_one()
            assert definition.endswith("WHERE (NOT drained)")


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    """A wallet with the `free` plan (no free credit), closed afterwards."""
    opened = make_wallet(engine)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def account(wallet: Wallet) -> int:
    """An account on the `free` plan, without credit."""
    return wallet.create_account("schema", "free", key="acct").account.id


def test_a_grant_emptied_by_a_charge_is_drained_and_one_with_credit_is_not(
    engine: sa.Engine, wallet: Wallet, account: int
) -> None:
    small = wallet.grant(account, "promotional", 3_000, key="small").grant.id
    big = wallet.grant(account, "purchased", 10_000, key="big").grant.id
    wallet.charge(account, 5_000, key="c1")  # promotional first: 3,000 then 2,000 purchased
    with engine.connect() as conn:
        drained = dict(conn.execute(sa.select(grants.c.id, grants.c.drained)).all())
    assert drained == {small: True, big: False}
    assert wallet.balance(account).paid == 8_000
    assert wallet.verify() == []


def test_verify_names_a_drained_grant_that_still_holds_credit(
    engine: sa.Engine, wallet: Wallet, account: int
) -> None:
    grant = wallet.grant(account, "purchased", 10_000, key="g").grant.id
    with engine.begin() as conn:
        conn.execute(sa.update(grants).where(grants.c.id == grant).values(drained=True))
    breaches = wallet.verify()
    assert [(b.account_id, b.rule) for b in breaches] == [(account, "drained_with_credit")]
    assert "0.01" in breaches[0].detail


def test_a_charge_that_leaves_credit_does_not_write_the_live_grants_index(
    engine: sa.Engine, wallet: Wallet, account: int
) -> None:
    # migration 0007: SQLite wrote nine pages a charge, PostgreSQL's grant updates were not HOT
    wallet.grant(account, "purchased", 10**9, key="g")
    wallet.charge(account, 1, key="warm")  # the period's usage row exists from here on
    if engine.dialect.name == "sqlite":
        # eight pages: the grant, the usage counter, the ledger row and its two indexes, the
        # key record, its key and its time index; not the live-grants index
        path = engine.url.database
        raw = engine.raw_connection()  # outside a transaction: the checkpoint needs none open
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
        wallet.charge(account, 1, key="measured")
        assert (os.path.getsize(f"{path}-wal") - 32) // (4096 + 24) == 8
    else:
        # the same charges inside one transaction, read with its own statistics counters
        with engine.begin() as conn:
            book = Book(conn, to_micros(T0))
            for n in range(5):
                charges.charge(book, account, 1, key=f"hot-{n}")
                book.flush()
            updated, hot = conn.exec_driver_sql(
                "SELECT pg_stat_get_xact_tuples_updated('grants'::regclass), "
                "pg_stat_get_xact_tuples_hot_updated('grants'::regclass)"
            ).one()
        assert (updated, hot) == (5, 5)
