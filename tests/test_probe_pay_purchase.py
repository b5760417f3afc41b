"""POST /v1/credits replays: the original answer byte for byte, and a key bound to its request."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

import apikit
from apikit import Tenant, tenant


def _user(t: Tenant, role: str) -> str:
    response = t.client.post("/v1/users", json={"name": role, "role": role}, headers=t.auth)
    assert response.status_code == 201, response.text
    user: str = response.json()["id"]
    return user


def test_a_replayed_purchase_answers_the_original_bytes_after_the_balance_moved(
    paying: TestClient,
) -> None:
    t = tenant(paying, number=None)
    first = t.post("/v1/credits", {"amount": "10.00"}, key="buy-1")
    assert first.status_code == 201, first.text
    apikit.grant(paying, t.account_id, "5.00")  # the balance moves on after the purchase
    again = t.post("/v1/credits", {"amount": "10.00"}, key="buy-1")
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.headers.get("Idempotent-Replayed") is None
    assert t.balance()["paid"] == "15.0000"


def test_a_purchase_key_reused_for_another_user_is_a_conflict_and_buys_nothing(
    paying: TestClient,
) -> None:
    t = tenant(paying, number=None)
    first, second = _user(t, "billing"), _user(t, "owner")
    assert t.post("/v1/credits", {"amount": "10.00", "user": first}, key="buy-2").status_code == 201
    other = t.post("/v1/credits", {"amount": "10.00", "user": second}, key="buy-2")
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "idempotency_conflict"
    no_user = t.post("/v1/credits", {"amount": "10.00"}, key="buy-2")
    assert no_user.status_code == 409
    assert t.balance()["paid"] == "10.0000"


def test_a_purchase_key_reused_for_another_amount_is_a_conflict(paying: TestClient) -> None:
    t = tenant(paying, number=None)
    assert t.post("/v1/credits", {"amount": "10.00"}, key="buy-3").status_code == 201
    other = t.post("/v1/credits", {"amount": "11.00"}, key="buy-3")
    assert other.status_code == 409
    assert t.balance()["paid"] == "10.0000"


def test_a_replayed_purchase_answers_even_after_the_user_lost_billing(paying: TestClient) -> None:
    # as for messages: a replay reports what was done, it does not decide again
    t = tenant(paying, number=None)
    user = _user(t, "billing")
    first = t.post("/v1/credits", {"amount": "10.00", "user": user}, key="buy-4")
    assert first.status_code == 201
    patched = paying.patch(f"/v1/users/{user}", json={"role": "viewer"}, headers=t.auth)
    assert patched.status_code == 200
    again = t.post("/v1/credits", {"amount": "10.00", "user": user}, key="buy-4")
    assert (again.status_code, again.content) == (201, first.content)
    fresh = t.post("/v1/credits", {"amount": "10.00", "user": user}, key="buy-5")
    assert fresh.status_code == 403
    assert fresh.json()["code"] == "permission_denied"
    assert t.balance()["paid"] == "10.0000"


def test_a_purchase_refused_for_the_user_leaves_its_key_free(paying: TestClient) -> None:
    t = tenant(paying, number=None)
    viewer = _user(t, "viewer")
    refused = t.post("/v1/credits", {"amount": "10.00", "user": viewer}, key="buy-6")
    assert refused.status_code == 403
    body: dict[str, Any] = {"amount": "10.00"}
    assert t.post("/v1/credits", body, key="buy-6").status_code == 201
    assert t.balance()["paid"] == "10.0000"
