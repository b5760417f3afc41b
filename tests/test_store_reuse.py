"""The connection stack behind the wallet's write transactions: reuse on SQLite only, a
failed transaction's connection never reused, commits and rollbacks like `Engine.begin`."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime.store.reuse import ConnectionStack


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM plans").scalar_one())


def _insert(conn: sa.Connection, name: str) -> None:
    conn.exec_driver_sql(
        f"INSERT INTO plans (name, monthly_free_credit, updated_at) VALUES ('{name}', 0, 0)"
    )


def test_stack_commits_the_block_and_rolls_back_a_failed_one(engine: sa.Engine) -> None:
    stack = ConnectionStack(engine)
    with stack.begin() as conn:
        _insert(conn, "kept")

    def fail() -> None:
        with stack.begin() as conn:
            _insert(conn, "dropped")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert _count(engine) == 1
    stack.close()


def test_stack_reuses_the_idle_connection_for_the_next_transaction(engine: sa.Engine) -> None:
    stack = ConnectionStack(engine)
    with stack.begin() as first:
        _insert(first, "a")
    with stack.begin() as second:
        _insert(second, "b")
    assert second is first
    assert not first.in_transaction()
    stack.close()
    assert first.closed
    assert _count(engine) == 2


def test_postgresql_connection_idle_too_long_is_not_reused(engine: sa.Engine) -> None:
    stack = ConnectionStack(engine, max_idle=0.0)
    with stack.begin() as first:
        _insert(first, "a")
    with stack.begin() as second:
        _insert(second, "b")
    if engine.dialect.name == "sqlite":
        assert second is first  # no server to drop it: no age limit
    else:
        assert second is not first
        assert first.closed
    stack.close()


def test_a_connection_whose_transaction_failed_is_closed_not_reused(engine: sa.Engine) -> None:
    stack = ConnectionStack(engine)
    used: list[sa.Connection] = []

    def insert_twice() -> None:
        with stack.begin() as conn:
            used.append(conn)
            _insert(conn, "same")
            _insert(conn, "same")

    with pytest.raises(sa.exc.IntegrityError):
        insert_twice()
    failed = used[0]
    assert failed.closed
    with stack.begin() as conn:
        assert conn is not failed
        _insert(conn, "same")
    assert _count(engine) == 1
    stack.close()


def test_closing_a_wallet_on_a_shared_engine_gives_its_connections_back_and_keeps_the_engine(
    engine: sa.Engine,
) -> None:
    from talktime.wallet import Wallet

    pool = engine.pool
    wallet = Wallet(engine)
    wallet.upsert_plan("p", 0)
    account = wallet.create_account("a", "p", "create").account.id
    wallet.grant(account, "purchased", 1_000, "g")
    assert pool.checkedout() == 1  # kept idle on the wallet's stack for the next write
    wallet.close()
    assert pool.checkedout() == 0
    assert engine.pool is pool  # not disposed: the engine belongs to the caller
    with Wallet(engine) as again:
        assert again.balance(account).paid == 1_000


def test_a_wallet_made_by_open_disposes_its_own_engine_on_close(db_url: str) -> None:
    from talktime.wallet import Wallet

    with Wallet.open(db_url, migrate=True) as wallet:
        wallet.upsert_plan("p", 0)
        wallet.create_account("a", "p", "create")
        pool = wallet.engine.pool
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0
    assert wallet.engine.pool is not pool  # disposed: a fresh, empty pool replaced it
