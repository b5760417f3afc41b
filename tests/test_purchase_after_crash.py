"""A purchase whose payment went through but whose grant was lost (a crash in between) is
finished by its retry, even after the subscription lapsed or the user lost `billing.manage`:
the money was taken, so the credit is owed. Until then the key is that purchase's: another
amount under it is 409 (since 1 Dec; before, it was checked afresh and took the key's start
record, so the first purchase's retry was then checked again and could be refused although its
money had been taken)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from talktime.service import credits
from talktime.wallet import grants
from talktime.wallet.payments import TestProvider

import apikit
from apikit import Tenant, tenant


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> TestProvider:
    """One test provider for every purchase of the test, so its payments can be counted."""
    shared = TestProvider()
    monkeypatch.setattr(credits, "provider_from_settings", lambda settings: shared)
    return shared


def _crash_after_payment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next grant fail as if the process died between the payment and the grant."""
    issue = grants.issue
    calls = {"n": 0}

    def failing_once(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the process died after the payment")
        return issue(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(grants, "issue", failing_once)


def _paid_then_crashed(paying: TestClient, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    t = tenant(paying, number=None)
    _crash_after_payment(monkeypatch)
    crashed = t.post("/v1/credits", {"amount": "10.00"}, key="buy")
    assert crashed.status_code == 500, crashed.text
    assert t.balance()["paid"] == "0.0000"
    return t


@pytest.mark.parametrize("status", ["canceled", "past_due"])
def test_a_purchase_paid_before_a_crash_is_granted_by_its_retry_after_the_subscription_lapsed(
    paying: TestClient,
    provider: TestProvider,
    monkeypatch: pytest.MonkeyPatch,
    status: str,
) -> None:
    t = _paid_then_crashed(paying, monkeypatch)
    assert provider.paid == 10_000_000
    apikit.set_status(paying, t.account_id, status)
    retried = t.post("/v1/credits", {"amount": "10.00"}, key="buy")
    assert retried.status_code == 201, retried.text
    assert t.balance()["paid"] == "10.0000"
    assert provider.paid == 10_000_000  # the card was charged once
    assert len({a.idempotency_key for a in provider.attempts}) == 1
    again = t.post("/v1/credits", {"amount": "10.00"}, key="buy")
    assert (again.status_code, again.content) == (201, retried.content)
    # a new purchase is still refused while the subscription is inactive
    fresh = t.post("/v1/credits", {"amount": "10.00"}, key="another")
    assert fresh.status_code == 403
    assert fresh.json()["code"] == "subscription_inactive"


def test_a_purchase_paid_before_a_crash_is_granted_after_the_user_lost_billing(
    paying: TestClient, provider: TestProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = tenant(paying, number=None)
    made = t.client.post("/v1/users", json={"name": "b", "role": "billing"}, headers=t.auth)
    user = made.json()["id"]
    _crash_after_payment(monkeypatch)
    crashed = t.post("/v1/credits", {"amount": "10.00", "user": user}, key="buy")
    assert crashed.status_code == 500
    demoted = paying.patch(f"/v1/users/{user}", json={"role": "viewer"}, headers=t.auth)
    assert demoted.status_code == 200
    retried = t.post("/v1/credits", {"amount": "10.00", "user": user}, key="buy")
    assert retried.status_code == 201, retried.text
    assert t.balance()["paid"] == "10.0000"
    assert provider.paid == 10_000_000


def test_another_amount_under_the_key_of_a_crashed_purchase_is_refused_and_the_retry_credits(
    paying: TestClient, provider: TestProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = _paid_then_crashed(paying, monkeypatch)
    apikit.set_status(paying, t.account_id, "canceled")
    other = t.post("/v1/credits", {"amount": "12.00"}, key="buy")
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "idempotency_conflict"
    assert t.balance()["paid"] == "0.0000"
    assert provider.paid == 10_000_000
    retried = t.post("/v1/credits", {"amount": "10.00"}, key="buy")  # still the first's
    assert retried.status_code == 201, retried.text
    assert t.balance()["paid"] == "10.0000"
    assert provider.paid == 10_000_000


def test_a_purchase_refused_by_policy_leaves_its_key_free_to_buy_later(
    paying: TestClient, provider: TestProvider
) -> None:
    t = tenant(paying, number=None)
    apikit.set_status(paying, t.account_id, "canceled")
    assert t.post("/v1/credits", {"amount": "10.00"}, key="buy").status_code == 403
    apikit.set_status(paying, t.account_id, "active")
    assert t.post("/v1/credits", {"amount": "10.00"}, key="buy").status_code == 201
    assert provider.paid == 10_000_000
