"""Shared helpers for the wallet tests: a fixed start time and a wallet with a plan."""

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
