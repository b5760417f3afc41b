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
