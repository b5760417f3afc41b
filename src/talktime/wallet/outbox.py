"""The event outbox: events written in the same transaction as the change that caused them.

Delivery is not the wallet's job; the operations side claims undelivered rows.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa

from talktime.store.wallet_tables import outbox
from talktime.wallet.periods import from_micros

BALANCE_LOW: Final = "balance.low"
CREDIT_DEPLETED: Final = "credit.depleted"
MONTHLY_LIMIT_REACHED: Final = "monthly_limit.reached"
CHARGE_UNCOLLECTED: Final = "charge.uncollected"
FREE_CREDIT_EXPIRED: Final = "free_credit.expired"
FREE_CREDIT_GRANTED: Final = "free_credit.granted"
NUMBER_SUSPENDED: Final = "number.suspended"
RECHARGE_SUCCEEDED: Final = "recharge.succeeded"
RECHARGE_FAILED: Final = "recharge.failed"

#: Every event type the wallet writes to the outbox.
EVENT_TYPES: Final = (
    BALANCE_LOW,
    CREDIT_DEPLETED,
    MONTHLY_LIMIT_REACHED,
    CHARGE_UNCOLLECTED,
    FREE_CREDIT_EXPIRED,
    FREE_CREDIT_GRANTED,
    NUMBER_SUSPENDED,
    RECHARGE_SUCCEEDED,
    RECHARGE_FAILED,
)


def event_row(account_id: int, type_: str, payload: dict[str, Any], now: int) -> dict[str, Any]:
    """An outbox row ready for insert."""
    return {
        "account_id": account_id,
        "type": type_,
        "payload": {"account_id": account_id, **payload},
        "created_at": now,
    }


def write_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows inside the caller's transaction."""
    if rows:
        conn.execute(sa.insert(outbox), rows)


def list_events(
    conn: sa.Connection, account_id: int | None = None, type_: str | None = None
) -> list[dict[str, Any]]:
    """Events as plain dicts (id, account_id, type, payload, created_at as an aware UTC
    datetime), oldest first."""
    query = sa.select(
        outbox.c.id, outbox.c.account_id, outbox.c.type, outbox.c.payload, outbox.c.created_at
    ).order_by(outbox.c.id)
    if account_id is not None:
        query = query.where(outbox.c.account_id == account_id)
    if type_ is not None:
        query = query.where(outbox.c.type == type_)
    return [{**r._mapping, "created_at": from_micros(r.created_at)} for r in conn.execute(query)]
