"""Shared helpers for the wallet tests: a fixed start time and a wallet with a plan."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from talktime.wallet import Wallet

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PLAN = "pro"
FREE = 10_000_000  # $10 of free credit a month


def make_wallet(engine: sa.Engine) -> Wallet:
    """A wallet on ``engine`` whose clock stands still at T0, with the `pro` plan."""
    wallet = Wallet(engine, clock=lambda: T0)
    wallet.upsert_plan(PLAN, FREE)
    wallet.upsert_plan("free", 0)
    return wallet
