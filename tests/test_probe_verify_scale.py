"""`verify` on a database with more paid grants than one SQL statement can bind parameters."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa

from talktime.store import make_engine
from talktime.wallet import Wallet
from wallet_helpers import T0

MANY = 65_536
"""One more paid grant than PostgreSQL binds parameters in one statement (65,535)."""


def _stock_sqlite_limit(dbapi_conn: Any, _record: Any) -> None:
    # Debian's SQLite binds 250,000 parameters; a stock build binds 32,766.
    dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)


def test_verify_reads_more_paid_grants_than_a_statement_can_bind(db_url: str) -> None:
    engine = make_engine(db_url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _stock_sqlite_limit)
    try:
        wallet = Wallet(engine, clock=lambda: T0)
        wallet.upsert_plan("free", 0)
        account = wallet.create_account("Acme", "free", "create").account.id
        at = wallet.account(account).created_at
        micros = int(at.timestamp()) * 1_000_000
        with engine.begin() as conn:  # a year of small recharges: one paid grant each
            conn.execute(
                sa.text(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                    " WHERE i < :many)"
                    " INSERT INTO grants (account_id, kind, original, remaining, held, priority,"
                    " effective_at, created_at) SELECT :account, 'purchased', 1000, 1000, 0, 30,"
                    " :at, :at FROM n"
                ),
                {"many": MANY, "account": account, "at": micros},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ledger (transaction_id, account_id, grant_id, amount, kind,"
                    " created_at) SELECT 'tx-' || CAST(id AS VARCHAR(20)), account_id, id,"
                    " original, 'recharge', created_at FROM grants WHERE kind = 'purchased'"
                )
            )
        wallet.charge(account, 2_500, "use")  # paid usage across three grants
        assert [str(b) for b in wallet.verify()] == []
        wallet.close()
    finally:
        engine.dispose()
