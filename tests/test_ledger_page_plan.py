"""A filtered ledger page on PostgreSQL reads the account's own index, not the whole ledger: with
`account_id = ?` and `ORDER BY id` the planner walked the primary key backward over every entry
of every account whenever a filter made the account's entries look rare (a scale audit: 145-270
ms a page at 1.2 million entries, growing with the table)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import ledger as wallet_ledger

pytestmark = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def _crowded_ledger(engine: sa.Engine) -> None:
    """200,000 entries over 2,500 accounts; account 1 has every 24th, its grants the oldest."""
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO plans VALUES ('p', 0, 0)")
        conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, currency, plan, status, anchor_at, period_start, "
            "period_end, created_at) SELECT x, 'a', 'USD', 'p', 'active', 0, 0, 10, 0 "
            "FROM generate_series(1, 2500) x"
        )
        conn.exec_driver_sql(
            "INSERT INTO ledger (transaction_id, account_id, amount, kind, reference, created_at) "
            "SELECT 't' || x, CASE WHEN x %% 24 = 0 THEN 1 ELSE 2 + x %% 2499 END, -1, "
            "CASE WHEN x %% 24 = 0 AND x > 1000 THEN 'usage' WHEN x %% 24 = 0 THEN 'grant' "
            "WHEN x %% 7 = 0 THEN 'grant' ELSE 'usage' END, 'msg_' || x, x "
            "FROM generate_series(1, 200000) x"
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE ledger")


@pytest.mark.parametrize(
    "filters",
    [{}, {"kind": "grant"}, {"reference": "msg_48"}, {"kind": "grant", "cursor": "100000"}],
    ids=["no filter", "kind", "reference", "kind after a cursor"],
)
def test_a_ledger_page_is_read_through_the_accounts_index(
    engine: sa.Engine, filters: dict[str, Any]
) -> None:
    _crowded_ledger(engine)
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM ledger" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            page = wallet_ledger.list_entries(conn, 1, limit=50, **filters)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert page.entries
    assert all(e.account_id == 1 for e in page.entries)
    ids = [e.id for e in page.entries]
    assert ids == sorted(ids, reverse=True)
    [(statement, parameters)] = seen
    with engine.connect() as conn:
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
    assert "ix_ledger_account_id_id" in plan, plan
    assert "pk_ledger" not in plan, plan
