"""Billing requests made for a named user need that user's `billing.manage` permission."""

from __future__ import annotations

from typing import Any

from apikit import tenant


def _user(api: Any, auth: dict[str, str], role: str, restrictions: list[str] | None = None) -> str:
    body = {"name": f"{role}-user", "role": role, "restrictions": restrictions or []}
    response = api.post("/v1/users", json=body, headers=auth)
    assert response.status_code == 201, response.text
    user: str = response.json()["id"]
    return user


def test_a_member_without_billing_manage_cannot_change_billing_settings(api: Any) -> None:
    t = tenant(api, credit="5.00")
    before = t.balance()
    member = t.user  # role member: sms.send and calls.make only
    limit = api.put(
        "/v1/settings/monthly-limit",
        json={"monthly_limit": "1.00", "user": member},
        headers=t.auth,
    )
    recharge = api.put(
        "/v1/settings/auto-recharge",
        json={"enabled": True, "threshold": "1.00", "amount": "10.00", "user": member},
        headers=t.auth,
    )
    purchase = t.post("/v1/credits", {"amount": "5.00", "user": member})
    for response in (limit, recharge, purchase):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "permission_denied"
    assert t.balance() == before


def test_a_billing_user_and_an_unnamed_account_key_may_change_billing_settings(api: Any) -> None:
    t = tenant(api)
    billing = _user(api, t.auth, "billing")
    response = api.put(
        "/v1/settings/monthly-limit",
        json={"monthly_limit": "2.50", "user": billing},
        headers=t.auth,
    )
    assert response.status_code == 200, response.text
    assert t.balance()["monthly_limit"] == "2.5000"
    response = api.put("/v1/settings/monthly-limit", json={"monthly_limit": None}, headers=t.auth)
    assert response.status_code == 200, response.text


def test_an_admin_can_take_billing_manage_away_from_a_user(api: Any) -> None:
    t = tenant(api)
    restricted = _user(api, t.auth, "admin", ["billing.manage"])
    response = api.put(
        "/v1/settings/monthly-limit",
        json={"monthly_limit": "2.50", "user": restricted},
        headers=t.auth,
    )
    assert response.status_code == 403
    assert "billing.manage" in response.json()["detail"]


def test_an_unknown_user_is_refused_with_the_field_named(api: Any) -> None:
    t = tenant(api)
    response = api.put(
        "/v1/settings/monthly-limit",
        json={"monthly_limit": "2.50", "user": "usr_nobody"},
        headers=t.auth,
    )
    assert response.status_code == 422
