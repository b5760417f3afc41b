"""Holds in the embedded wallet, found by probing; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import MonthlyLimitReachedError
from wallet_helpers import make_wallet

D = 1_000_000


def test_extending_a_hold_step_by_step_cannot_pass_the_monthly_limit(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "c").account.id
    wallet.grant(account, "purchased", 10 * D, key="g")
    wallet.set_monthly_limit(account, 3 * D, "limit")
    hold = wallet.authorize(account, 2 * D, "h", timedelta(hours=1)).hold.id
    with pytest.raises(MonthlyLimitReachedError) as refused:
        wallet.extend(hold, 2 * D, "e1")  # 2 held + 2 more > 3
    assert refused.value.extra == {"limit": 3 * D, "used": 0, "reserved": 2 * D, "needed": 2 * D}
    assert "after the 2.0000 USD held for usage in progress" in refused.value.detail
    with pytest.raises(MonthlyLimitReachedError):
        wallet.authorize(account, 2 * D, "h2", timedelta(hours=1))  # another hold alike
    assert wallet.extend(hold, D, "e2").hold.amount == 3 * D  # exactly up to the limit
    assert wallet.balance(account).held == 3 * D
    assert len(wallet.events(account, "monthly_limit.reached")) == 1
    assert wallet.verify() == []
