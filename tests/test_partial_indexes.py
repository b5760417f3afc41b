"""Queries that filter on a partial index's condition use that index whatever the bound values.

A planner can use a partial index only when the query repeats the index's condition with the
same constants. Written as a bound parameter (`status != ?` with 'released' bound), SQLite
prepares the statement again on every execution to look at the value (about ten times slower
for the send path's context query) and a PostgreSQL generic plan cannot use the index at all.
Each test captures the SQL a real operation runs, then asks the planner for its plan with every
parameter NULL: the partial index must still be in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.service.messages import _SEND_CONTEXT, account_number
from talktime.store.tables import constant
from talktime.wallet import holds, rentals
from talktime.wallet import recharge as recharge_mod
from talktime.wallet.accounts import list_grants
from talktime.wallet.book import _LOAD_ONE, _many_sql
from talktime.wallet.periods import to_micros
from wallet_helpers import PLAN, T0, make_wallet

NOW = to_micros(T0)


@contextmanager
def captured(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL text of every statement ``engine`` executes inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def plan_with_null_parameters(engine: sa.Engine, statement: str) -> str:
    """The planner's plan for ``statement`` with every parameter NULL (PostgreSQL: the generic
    plan, with sequential scans discouraged so that any usable index shows)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            count = statement.count("?")
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", (None,) * count)
            return "\n".join(str(r[-1]) for r in rows)
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        numbered = re.sub(r"%\((\w+)\)s", number, statement).replace("%%", "%")
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("SET plan_cache_mode = force_generic_plan")
        driver.execute("SET enable_seqscan = off")
        driver.execute(f"PREPARE probe AS {numbered}")
        try:
            args = ", ".join(["NULL"] * len(names))
            rows = driver.execute(f"EXPLAIN EXECUTE probe{f'({args})' if names else ''}")
            return "\n".join(r[0] for r in rows.fetchall())
        finally:
            driver.execute("DEALLOCATE probe")
            driver.execute("RESET ALL")


def only(statements: list[str], *fragments: str) -> str:
    """The one captured statement containing every fragment."""
    found = [s for s in statements if all(f in s for f in fragments)]
    assert len(found) == 1, f"expected one statement with {fragments}, got {found}"
    return found[0]


def run_captured(engine: sa.Engine, work: Callable[[sa.Connection], Any]) -> list[str]:
    with captured(engine) as seen, engine.begin() as conn:
        work(conn)
    return seen


@pytest.fixture
def account(engine: sa.Engine) -> int:
    wallet = make_wallet(engine)
    account_id = wallet.create_account("acme", PLAN, "acct").account.id
    wallet.close()
    return account_id


def test_the_send_context_finds_the_sending_number_through_the_held_number_index(
    engine: sa.Engine,
) -> None:
    with engine.connect() as conn:
        statement = _SEND_CONTEXT._prepare(conn)[0]
    assert "uq_phone_numbers_e164_held" in plan_with_null_parameters(engine, statement)


def test_looking_up_a_held_number_uses_the_held_number_index(
    engine: sa.Engine, account: int
) -> None:
    seen = run_captured(engine, lambda conn: account_number(conn, "+14155550100"))
    lookup = only(seen, "FROM phone_numbers", "e164")
    assert "uq_phone_numbers_e164_held" in plan_with_null_parameters(engine, lookup)

    def add(conn: sa.Connection) -> None:
        rentals.add_number(
            conn,
            account,
            "+14155550100",
            country="US",
            number_type="local",
            monthly_price=0,
            rate_ref="test",
            now=NOW,
        )

    held_check = only(
        run_captured(engine, add), "phone_numbers.status \nFROM phone_numbers", "e164"
    )
    assert "uq_phone_numbers_e164_held" in plan_with_null_parameters(engine, held_check)


def test_the_recharge_in_flight_check_and_the_claim_use_their_partial_indexes(
    engine: sa.Engine, account: int
) -> None:
    seen = run_captured(engine, lambda conn: recharge_mod.in_flight(conn, account))
    in_flight = only(seen, "FROM recharges", "account_id")
    assert "uq_recharges_in_flight" in plan_with_null_parameters(engine, in_flight)

    with captured(engine) as seen:
        recharge_mod._claim(engine, NOW, 10)
    claim = only(seen, "FROM recharges", "next_attempt_at")
    assert "ix_recharges_due" in plan_with_null_parameters(engine, claim)


def test_the_hold_expiry_job_reads_pending_holds_through_their_partial_index(
    engine: sa.Engine,
) -> None:
    seen = run_captured(engine, lambda conn: holds.due_holds(conn, NOW))
    due = only(seen, "FROM holds", "expires_at")
    assert "ix_holds_pending_expiry" in plan_with_null_parameters(engine, due)


def test_issuing_free_credit_checks_the_period_through_the_free_grant_index(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    with captured(engine) as seen:
        wallet.create_account("acme", PLAN, "acct-free")
    wallet.close()
    exists = only(seen, "FROM grants", "period_start")
    assert "uq_grants_free_period" in plan_with_null_parameters(engine, exists)


def test_the_account_load_and_the_live_grant_list_use_the_live_grant_index(
    engine: sa.Engine, account: int
) -> None:
    with engine.connect() as conn:
        load = _LOAD_ONE._prepare(conn)[0]
    assert "ix_grants_live" in plan_with_null_parameters(engine, load)
    seen = run_captured(engine, lambda conn: list_grants(conn, account, live_only=True))
    listing = only(seen, "FROM grants", "remaining")
    assert "ix_grants_live" in plan_with_null_parameters(engine, listing)


def test_a_batch_reads_its_accounts_live_grants_through_the_live_grant_index(
    engine: sa.Engine,
) -> None:
    # the batch's statement is SQL text assembled per dialect around `GRANT_LIVE`
    live = _many_sql(engine.dialect.name).live.replace("%s", "%(ids)s")
    assert "ix_grants_live" in plan_with_null_parameters(engine, live)


@pytest.mark.parametrize("value", ["it's", "a b", "", 1.5, True])
def test_constant_refuses_values_it_could_not_write_safely(value: Any) -> None:
    with pytest.raises(ValueError, match="constant"):
        constant(value)


def test_constant_writes_strings_quoted_and_ints_bare() -> None:
    query = sa.select(sa.literal_column("x")).where(
        sa.literal_column("a") == constant("free_monthly"), sa.literal_column("b") > constant(0)
    )
    assert "a = 'free_monthly' AND b > 0" in str(query)
