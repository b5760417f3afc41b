"""Shared helpers for the wallet tests: a fixed start time, a wallet with a plan, UTC times,
rented numbers and their status."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from talktime.wallet import Wallet, rentals
from talktime.wallet.periods import to_micros

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PLAN = "pro"
FREE = 10_000_000  # $10 of free credit a month


def make_wallet(engine: sa.Engine) -> Wallet:
    """A wallet on ``engine`` whose clock stands still at T0, with the `pro` plan."""
    wallet = Wallet(engine, clock=lambda: T0)
    wallet.upsert_plan(PLAN, FREE)
    wallet.upsert_plan("free", 0)
    return wallet


def rent(engine: sa.Engine, account: int, e164: str, price: int, at: datetime = T0) -> int:
    """Add a US local number to ``account`` at ``at`` with a monthly price; returns its id."""
    with engine.begin() as conn:
        number = rentals.add_number(
            conn,
            account,
            e164,
            country="US",
            number_type="local",
            monthly_price=price,
            rate_ref="numbers-2026-01:US:local",
            now=to_micros(at),
            sms_enabled=True,
        )
    return number.id


def utc(*args: int) -> datetime:
    """A UTC datetime: ``utc(2026, 4, 1)``."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def number_status(engine: sa.Engine, account: int, number_id: int) -> str:
    """The status of the account's number: active, suspended or released."""
    with engine.connect() as conn:
        return rentals.get_number(conn, account, number_id).status
