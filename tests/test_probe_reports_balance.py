"""`GET /v1/balance` and `Wallet.balance`: `free_expires_at` is when the free credit left (free
monthly and promotional alike, as `free` counts them) first expires, not only the monthly part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wallet_helpers import FREE, PLAN, T0, make_wallet

from apikit import ADMIN, idem, import_tiny_card, tenant


def test_promotional_credit_alone_reports_when_it_expires_not_never(api: Any) -> None:
    import_tiny_card(api)
    t = tenant(api, plan="trial", number=None, rate_card="tiny")  # no free monthly credit
    expires = (datetime.now(UTC) + timedelta(days=9)).replace(microsecond=0)
    response = api.post(
        f"/v1/admin/accounts/{t.account_id}/grants",
        json={"kind": "promotional", "amount": "5.00", "expires_at": expires.isoformat()},
        headers={**ADMIN, **idem()},
    )
    assert response.status_code == 201, response.text
    balance = t.balance()
    assert balance["free"] == "5.0000"
    assert balance["free_expires_at"] == expires.isoformat()  # was None: "never expires"


def test_free_credit_expires_at_the_first_of_its_grants_to_lapse(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create", now=T0).account.id
    period_end = wallet.balance(account, T0).period_end
    soon = T0 + timedelta(days=2)
    wallet.grant(account, "promotional", 3_000_000, "promo", expires_at=soon, now=T0)
    wallet.grant(account, "promotional", 1_000_000, "forever", now=T0)
    wallet.grant(account, "purchased", 1_000_000, "bought", expires_at=T0 + timedelta(hours=1))
    balance = wallet.balance(account, T0)
    assert balance.free == FREE + 4_000_000
    assert balance.free_expires_at == soon  # was the monthly credit's period end
    later = wallet.balance(account, soon)  # the promotion has lapsed
    assert later.free == FREE + 1_000_000
    assert later.free_expires_at == period_end
