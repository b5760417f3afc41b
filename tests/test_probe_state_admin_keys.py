"""An admin Idempotency-Key used for a grant and then for an account change (or the other way
round) is one key for two different requests: the second is 409 and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import apikit


def _balance(api: Any, account_id: int) -> dict[str, Any]:
    response = api.get(f"/v1/admin/accounts/{account_id}", headers=apikit.ADMIN)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_a_grant_key_reused_for_an_account_change_is_a_conflict(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    headers = {**apikit.ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    granted = api.post(
        f"/v1/admin/accounts/{t.account_id}/grants",
        json={"kind": "promotional", "amount": "1.00"},
        headers=headers,
    )
    assert granted.status_code == 201, granted.text
    before = _balance(api, t.account_id)
    changed = api.patch(
        f"/v1/admin/accounts/{t.account_id}", json={"status": "canceled"}, headers=headers
    )
    assert (changed.status_code, changed.json()["code"]) == (409, "idempotency_conflict")
    assert _balance(api, t.account_id) == before  # still active
    again = api.post(
        f"/v1/admin/accounts/{t.account_id}/grants",
        json={"kind": "promotional", "amount": "1.00"},
        headers=headers,
    )
    assert (again.status_code, again.text) == (201, granted.text)


def test_an_account_change_key_reused_for_a_grant_is_a_conflict(api: Any) -> None:
    t = apikit.tenant(api, credit="1.00")
    headers = {**apikit.ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    changed = api.patch(
        f"/v1/admin/accounts/{t.account_id}", json={"status": "past_due"}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    before = t.balance()
    granted = api.post(
        f"/v1/admin/accounts/{t.account_id}/grants",
        json={"kind": "purchased", "amount": "5.00"},
        headers=headers,
    )
    assert (granted.status_code, granted.json()["code"]) == (409, "idempotency_conflict")
    assert t.balance() == before  # nothing granted
    again = api.patch(
        f"/v1/admin/accounts/{t.account_id}", json={"status": "past_due"}, headers=headers
    )
    assert (again.status_code, again.text) == (200, changed.text)
