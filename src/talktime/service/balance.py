"""Reading credit: the balance with its monthly limit, low-balance threshold and auto-recharge
state, the ledger, and the monthly-limit and low-balance settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from talktime.config import Settings
from talktime.service import cards
from talktime.service.common import fmt
from talktime.store.engine import read_snapshot
from talktime.store.writer import writing
from talktime.wallet import accounts, recharge
from talktime.wallet import ledger as wallet_ledger
from talktime.wallet.model import LedgerEntry
from talktime.wallet.periods import from_micros, to_micros, utcnow


def _auto_recharge(conn: sa.Connection, account_id: int) -> dict[str, Any]:
    cfg = recharge.get_settings_of(conn, account_id)
    if cfg is None:
        return {
            "enabled": False,
            "threshold": None,
            "amount": None,
            "disabled_reason": None,
            "customer": None,
            "payment_method": None,
        }
    # a row saved for the payment method has no amount yet; a threshold may be stored on
    # its own (turning auto-recharge off)
    return {
        "enabled": cfg.enabled,
        "threshold": None if not cfg.amount_set and cfg.threshold == 0 else fmt(cfg.threshold),
        "amount": fmt(cfg.amount) if cfg.amount_set else None,
        "disabled_reason": cfg.disabled_reason,
        "customer": cfg.customer,
        "payment_method": cfg.payment_method,
    }


def balance(engine: sa.Engine, account_id: int, settings: Settings) -> dict[str, Any]:
    """Free credit left this period and when it expires, paid, held, available, the monthly
    limit with this period's paid usage, the low-balance threshold, and the auto-recharge
    state.

    An account whose period ended before the monthly cycle opened the next gets it opened
    first, as its next charge would (`open_ended_period`): the balance shows the credit that
    charge would use, not the old period's."""
    now = to_micros(utcnow())
    # one read transaction: the account, its balances and auto-recharge from one snapshot
    with read_snapshot(engine) as conn, conn.begin():
        if not _ended(conn, account_id, now):
            return balance_in(conn, account_id, now)
    with writing(engine) as conn:
        cards.catch_up(settings)(conn, account_id, now)
        return balance_in(conn, account_id, now)


def open_ended_period(engine: sa.Engine, account_id: int, settings: Settings, now: int) -> None:
    """Open the account's periods begun by ``now`` that the monthly cycle has not opened yet,
    with its own card's free credit, as its next charge would (`cards.catch_up`), so a read
    after it shows what that charge would use; nothing is written when its period has not
    ended."""
    with read_snapshot(engine) as conn, conn.begin():
        if not _ended(conn, account_id, now):
            return
    with writing(engine) as conn:
        cards.catch_up(settings)(conn, account_id, now)


def _ended(conn: sa.Connection, account_id: int, now: int) -> bool:
    return accounts.get_account(conn, account_id).period_end <= from_micros(now)


def balance_in(conn: sa.Connection, account_id: int, now: int | None = None) -> dict[str, Any]:
    """`balance` read on ``conn`` (inside the caller's transaction: it sees its writes) at
    ``now`` (default: the clock)."""
    account = accounts.get_account(conn, account_id)
    b = accounts.read_balance(conn, account_id, to_micros(utcnow()) if now is None else now)
    auto = _auto_recharge(conn, account_id)
    return {
        "currency": account.currency,
        "free": fmt(b.free),
        "free_expires_at": None if b.free_expires_at is None else b.free_expires_at.isoformat(),
        "paid": fmt(b.paid),
        "held": fmt(b.held),
        "available": fmt(b.available),
        "monthly_limit": None if b.monthly_limit is None else fmt(b.monthly_limit),
        "period_usage": fmt(b.period_usage),
        "period_start": b.period_start.isoformat(),
        "period_end": b.period_end.isoformat(),
        "low_balance_threshold": (
            None if account.low_balance_threshold is None else fmt(account.low_balance_threshold)
        ),
        "auto_recharge": auto,
    }


def entry_dict(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger entry as API data."""
    return {
        "id": entry.id,
        "transaction_id": entry.transaction_id,
        "kind": entry.kind,
        "amount": fmt(entry.amount),
        "grant_id": entry.grant_id,
        "hold_id": entry.hold_id,
        "reference": entry.reference,
        "lines": entry.lines,
        "created_at": entry.created_at.isoformat(),
    }


def ledger(
    engine: sa.Engine,
    account_id: int,
    *,
    cursor: str | None = None,
    limit: int = 50,
    kind: str | None = None,
    reference: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """A page of the account's ledger, newest first."""
    with read_snapshot(engine) as conn, conn.begin():
        currency = accounts.get_account(conn, account_id).currency
        page = wallet_ledger.list_entries(
            conn,
            account_id,
            cursor=cursor,
            limit=limit,
            kind=kind,
            reference=reference,
            since=since,
            until=until,
        )
    return {
        "currency": currency,
        "entries": [entry_dict(e) for e in page.entries],
        "next_cursor": page.next_cursor,
    }


def set_monthly_limit(
    engine: sa.Engine, settings: Settings, account_id: int, limit: int | None
) -> dict[str, Any]:
    """Cap the paid credit used per period (None removes the cap); returns the balance."""
    _change_setting(
        engine, settings, account_id, "set_monthly_limit", {"monthly_limit": limit}, "monthly-limit"
    )
    return balance(engine, account_id, settings)


def set_low_balance_threshold(
    engine: sa.Engine, settings: Settings, account_id: int, threshold: int | None
) -> dict[str, Any]:
    """Set the available credit under which a debit queues `balance.low` (None turns the
    event off); returns the balance."""
    _change_setting(
        engine,
        settings,
        account_id,
        "set_low_balance_threshold",
        {"low_balance_threshold": threshold},
        "low-balance",
    )
    return balance(engine, account_id, settings)


def _change_setting(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    operation: str,
    changes: dict[str, Any],
    key_prefix: str,
) -> None:
    """Change one account setting in a transaction that first opens the periods begun since
    the cycle last ran, with the free credit of the account's own card (as a charge does):
    a change applies from now, never to a period that ended before it."""
    with writing(engine) as conn:
        book = cards.charging_book(conn, settings)
        accounts.update(book, account_id, operation, changes, f"{key_prefix}:{uuid.uuid4().hex}")
        book.flush()
