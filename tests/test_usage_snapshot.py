"""A usage report reads one snapshot: what commits while it runs is in none of its parts.
Before, on PostgreSQL (READ COMMITTED) each of its reads saw the commits before it, so a
report could hold a call completed after a message it did not hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from talktime import money
from talktime.ops.clock import from_datetime
from talktime.ops.usage import usage
from talktime.store.api_tables import calls, messages
from talktime.wallet import Wallet

SEPT = datetime(2026, 9, 1, tzinfo=UTC)


def _commit_a_message_then_a_call(engine: sa.Engine, account: int) -> None:
    at = from_datetime(SEPT + timedelta(days=2))
    common = {
        "account_id": account,
        "currency": "USD",
        "user_id": None,
        "direction": "outbound",
        "from_number": "+14155550100",
        "to_number": "+14155550101",
    }
    with engine.begin() as conn:
        conn.execute(
            messages.insert().values(
                id="msg_late",
                encoding="GSM-7",
                segments=1,
                amount=10_000,
                lines="[]",
                status="sent",
                created_at=at,
                **common,
            )
        )
        conn.execute(
            calls.insert().values(
                id="call_late",
                state="completed",
                card="default",
                authorized_amount=13_000,
                max_duration_seconds=60,
                amount=13_000,
                authorized_at=at,
                completed_at=at + 1,
                **common,
            )
        )


def test_a_report_holds_nothing_committed_while_it_ran(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", 10 * money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme", "starter", "create", now=SEPT).account.id
    fired: list[bool] = []

    def between_reads(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # the report has read its account and its messages: commit a message and a call now
        if not fired and "FROM calls" in statement:
            fired.append(True)
            _commit_a_message_then_a_call(engine, account)

    sa.event.listen(engine, "before_cursor_execute", between_reads)
    try:
        groups = usage(
            engine,
            account,
            from_datetime(SEPT),
            from_datetime(SEPT + timedelta(days=30)),
            group_by=["channel"],
        )
    finally:
        sa.event.remove(engine, "before_cursor_execute", between_reads)
    assert fired
    assert groups == []  # neither the message nor the call (before: the call alone)
    later = usage(engine, account, from_datetime(SEPT), from_datetime(SEPT + timedelta(days=30)))
    assert sum(g.count for g in later) == 2
