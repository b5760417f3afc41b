"""Admin replays: an account creation or grant key is bound to its whole request, replays are
the original answer marked `Idempotent-Replayed`, and a conflict names the key that was sent."""

from __future__ import annotations

from typing import Any

from apikit import ADMIN, tenant


def _create(api: Any, body: dict[str, Any], key: str) -> Any:
    return api.post("/v1/admin/accounts", json=body, headers={**ADMIN, "Idempotency-Key": key})


def _balance(api: Any, account_id: int) -> dict[str, Any]:
    response = api.get(f"/v1/admin/accounts/{account_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    balance: dict[str, Any] = response.json()["balance"]
    return balance


def test_an_account_creation_key_reused_with_starting_credit_is_a_conflict_and_grants_nothing(
    api: Any,
) -> None:
    first = _create(api, {"name": "Acme", "plan": "startup"}, "acct-1")
    assert first.status_code == 201, first.text
    account_id = first.json()["id"]
    again = _create(api, {"name": "Acme", "plan": "startup", "credit": "5.00"}, "acct-1")
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "idempotency_conflict"
    assert "'acct-1'" in again.json()["detail"]
    assert _balance(api, account_id)["paid"] == "0.0000"


def test_an_account_creation_key_reused_with_another_rate_card_is_a_conflict(api: Any) -> None:
    assert _create(api, {"name": "Acme", "plan": "startup"}, "acct-2").status_code == 201
    again = _create(api, {"name": "Acme", "plan": "startup", "rate_card": "passthrough"}, "acct-2")
    assert again.status_code == 409, again.text


def test_a_replayed_account_creation_is_the_original_answer_marked_replayed(api: Any) -> None:
    body = {"name": "Acme", "plan": "startup", "credit": "5.00", "rate_card": "passthrough"}
    first = _create(api, body, "acct-3")
    assert first.status_code == 201, first.text
    account_id = first.json()["id"]
    patched = api.patch(
        f"/v1/admin/accounts/{account_id}",
        json={"rate_card": "default"},
        headers={**ADMIN, "Idempotency-Key": "patch-3"},
    )
    assert patched.status_code == 200, patched.text
    again = _create(api, body, "acct-3")
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.headers.get("Idempotent-Replayed") is None
    assert _balance(api, account_id)["paid"] == "5.0000"


def test_a_replayed_admin_grant_is_marked_and_a_conflict_names_the_key_sent(api: Any) -> None:
    t = tenant(api, number=None)
    path = f"/v1/admin/accounts/{t.account_id}/grants"
    headers = {**ADMIN, "Idempotency-Key": "g1"}
    first = api.post(path, json={"kind": "promotional", "amount": "2.00"}, headers=headers)
    assert first.status_code == 201, first.text
    again = api.post(path, json={"kind": "promotional", "amount": "2.00"}, headers=headers)
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.post(path, json={"kind": "refund", "amount": "2.00"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["detail"].startswith("Idempotency-Key 'g1' was already used")
    assert "admin-grant" not in other.text


def test_a_status_change_key_reused_for_another_status_names_the_key_sent(api: Any) -> None:
    t = tenant(api, number=None)
    path = f"/v1/admin/accounts/{t.account_id}"
    headers = {**ADMIN, "Idempotency-Key": "s1"}
    assert api.patch(path, json={"status": "past_due"}, headers=headers).status_code == 200
    other = api.patch(path, json={"status": "canceled"}, headers=headers)
    assert other.status_code == 409
    assert "'s1'" in other.json()["detail"]
    assert ":status" not in other.text
    assert api.get(path, headers=ADMIN).json()["status"] == "past_due"
