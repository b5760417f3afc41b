"""Buying credit through the account's payment provider, and the auto-recharge setting."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from talktime.config import Settings
from talktime.service.balance import balance
from talktime.service.common import fmt, now_micros
from talktime.wallet import Wallet, recharge
from talktime.wallet.payments import (
    PaymentProvider,
    provider_from_settings,
)


def purchase(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    amount: int,
    key: str,
    provider: PaymentProvider | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Buy credit: the provider is paid first, the credit granted after (never twice per key).
    Returns whether the key had already answered (a replay), and the answer."""
    Wallet(engine).account(account_id)  # 404 before any payment is attempted
    result = recharge.purchase(
        engine, account_id, amount, key, provider or provider_from_settings(settings)
    )
    g = result.grant
    return result.replayed, {
        "grant_id": g.id,
        "amount": fmt(g.original),
        "source": g.source,
        "transaction_id": result.transaction_id,
        "balance": balance(engine, account_id),
        "created_at": g.effective_at.isoformat(),
    }


def set_auto_recharge(
    engine: sa.Engine, account_id: int, *, enabled: bool, threshold: int, amount: int
) -> dict[str, Any]:
    """When paid credit falls under ``threshold``, buy ``amount`` more (one at a time).

    Turning it on with an ``amount`` no card payment can take (not whole cents) is refused
    (`payment_setup_invalid`), as buying that amount is; turning it off always works.
    """
    Wallet(engine).account(account_id)
    with engine.begin() as conn:  # `configure` refuses an amount a card cannot take
        recharge.configure(
            conn, account_id, enabled=enabled, threshold=threshold, amount=amount, now=now_micros()
        )
    return balance(engine, account_id)
