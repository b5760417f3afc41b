"""Idempotency-Key probes: a key is bound to its caller's request, whatever other requests or
the world did since; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.config import Settings
from talktime.service import credits
from talktime.wallet import Wallet
from talktime.wallet import recharge as rc
from talktime.wallet.payments import PaymentRequest, PaymentResult, TestProvider
from wallet_helpers import make_wallet

import apikit
from apikit import ADMIN, tenant


def test_a_fresh_purchase_key_shaped_like_another_requests_wallet_key_buys_credit(
    paying: TestClient,
) -> None:
    """`sms:abc` is a new key for `POST /v1/credits` even after a message went out under
    `abc` (whose wallet record is `sms:abc`): it was refused 409 and bought nothing."""
    t = tenant(paying)
    sms = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
    assert t.post("/v1/messages", sms, key="abc").status_code == 201
    grant = paying.post(
        f"/v1/admin/accounts/{t.account_id}/grants",
        json={"kind": "promotional", "amount": "1.00"},
        headers={**ADMIN, "Idempotency-Key": "G"},
    )
    assert grant.status_code == 201, grant.text
    for key in ("sms:abc", "admin-grant:G"):
        bought = t.post("/v1/credits", {"amount": "2.00"}, key=key)
        assert bought.status_code == 201, bought.text
        again = t.post("/v1/credits", {"amount": "2.00"}, key=key)
        assert (again.status_code, again.content) == (201, bought.content)
    assert t.balance()["paid"] == "4.0000"


def test_a_purchase_pays_the_provider_under_the_key_derived_from_the_callers_key(
    engine: sa.Engine, db_url: str
) -> None:
    """The wallet's record is namespaced, the provider's key is not: a retry that spans the
    change pays under the key the first attempt used, so the card is never charged twice."""
    wallet = make_wallet(engine)
    account = wallet.create_account("a", "free", "acct-a").account.id
    sent: list[PaymentRequest] = []

    class Recording(TestProvider):
        def charge(self, request: PaymentRequest) -> PaymentResult:
            sent.append(request)
            return super().charge(request)

    settings = Settings(database_url=db_url)
    for _ in range(2):
        answer = credits.purchase(engine, settings, account, 1_000_000, "k-1", Recording())
        assert answer.status == 201
    assert [r.idempotency_key for r in sent] == [rc.purchase_payment_key(account, "k-1")]
    assert Wallet(engine).balance(account).paid == 1_000_000  # now, not at T0


def test_an_admin_grant_replayed_after_its_expiry_passed_answers_the_original(api: Any) -> None:
    """A retried grant whose `expires_at` was ahead when it was granted is the original answer,
    not 422 `expires_at must be in the future`; a new key with that time still is 422."""
    t = tenant(api, number=None)
    expires = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    body = {"kind": "promotional", "amount": "1.00", "expires_at": expires}
    path = f"/v1/admin/accounts/{t.account_id}/grants"
    first = api.post(path, json=body, headers={**ADMIN, "Idempotency-Key": "g-exp"})
    assert first.status_code == 201, first.text
    time.sleep(1.1)
    again = api.post(path, json=body, headers={**ADMIN, "Idempotency-Key": "g-exp"})
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    before = t.ledger()
    fresh = api.post(path, json=body, headers={**ADMIN, "Idempotency-Key": "g-new"})
    assert fresh.status_code == 422, fresh.text
    assert (fresh.json()["code"], fresh.json()["field"]) == ("invalid_request", "expires_at")
    other = api.post(
        path, json={**body, "amount": "2.00"}, headers={**ADMIN, "Idempotency-Key": "g-exp"}
    )
    assert other.json()["code"] == "idempotency_conflict"
    assert t.ledger() == before
    apikit.grant(api, t.account_id, "1.00")  # the account still takes new grants
