"""User management: a named `acting_user` needs the `admin` permission (an account key alone
still manages its users, as before), and a user is named with more than spaces."""

from __future__ import annotations

from typing import Any

import pytest

from apikit import ADMIN, tenant


def _user(api: Any, auth: dict[str, str], role: str, restrictions: list[str] | None = None) -> str:
    body = {"name": f"{role}-user", "role": role, "restrictions": restrictions or []}
    response = api.post("/v1/users", json=body, headers=auth)
    assert response.status_code == 201, response.text
    user: str = response.json()["id"]
    return user


def _users(api: Any, auth: dict[str, str]) -> list[dict[str, Any]]:
    response = api.get("/v1/users", headers=auth)
    assert response.status_code == 200, response.text
    users: list[dict[str, Any]] = response.json()["users"]
    return users


@pytest.mark.parametrize("role", ["member", "billing", "viewer"])
def test_a_user_without_admin_cannot_restrict_another_user_or_add_one(api: Any, role: str) -> None:
    t = tenant(api)
    actor = _user(api, t.auth, role)
    before = _users(api, t.auth)
    restrict = api.patch(
        f"/v1/users/{t.user}",
        json={"restrictions": ["sms.send"], "acting_user": actor},
        headers=t.auth,
    )
    promote = api.patch(
        f"/v1/users/{actor}", json={"role": "admin", "acting_user": actor}, headers=t.auth
    )
    create = api.post(
        "/v1/users", json={"name": "Eve", "role": "owner", "acting_user": actor}, headers=t.auth
    )
    for response in (restrict, promote, create):
        assert response.status_code == 403, response.text
        problem = response.json()
        assert problem["code"] == "permission_denied"
        assert "admin" in problem["detail"]
        assert actor in problem["detail"]
    assert _users(api, t.auth) == before


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_admin_user_can_restrict_a_user_and_the_restriction_applies(api: Any, role: str) -> None:
    t = tenant(api, credit="5.00")
    actor = _user(api, t.auth, role)
    response = api.patch(
        f"/v1/users/{t.user}",
        json={"restrictions": ["sms.send"], "acting_user": actor},
        headers=t.auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()["restrictions"] == ["sms.send"]
    refused = t.sms("+14155550199")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    created = api.post(
        "/v1/users", json={"name": "Bo", "role": "member", "acting_user": actor}, headers=t.auth
    )
    assert created.status_code == 201, created.text


def test_an_admin_whose_admin_permission_was_restricted_cannot_manage_users(api: Any) -> None:
    t = tenant(api)
    actor = _user(api, t.auth, "admin", ["admin"])
    response = api.patch(
        f"/v1/users/{t.user}", json={"role": "viewer", "acting_user": actor}, headers=t.auth
    )
    assert response.status_code == 403
    assert "an admin restricted it" in response.json()["detail"]
    assert next(u for u in _users(api, t.auth) if u["id"] == t.user)["role"] == "member"


def test_an_acting_user_of_another_account_is_an_unknown_user(api: Any) -> None:
    mine, other = tenant(api), tenant(api, number=None)
    stranger = _user(api, other.auth, "owner")
    body = {"role": "viewer", "acting_user": stranger}
    response = api.patch(f"/v1/users/{mine.user}", json=body, headers=mine.auth)
    assert response.status_code == 422
    assert stranger in response.json()["detail"]


def test_the_admin_key_route_holds_a_named_acting_user_to_the_same_rule(api: Any) -> None:
    t = tenant(api)
    member = _user(api, t.auth, "member")
    response = api.patch(
        f"/v1/admin/accounts/{t.account_id}/users/{t.user}",
        json={"role": "viewer", "acting_user": member},
        headers=ADMIN,
    )
    assert response.status_code == 403
    unnamed = api.patch(
        f"/v1/admin/accounts/{t.account_id}/users/{t.user}", json={"role": "viewer"}, headers=ADMIN
    )
    assert unnamed.status_code == 200, unnamed.text


def test_a_user_name_of_only_spaces_is_refused_naming_the_field(api: Any) -> None:
    t = tenant(api, number=None)
    before = _users(api, t.auth)
    created = api.post("/v1/users", json={"name": "   "}, headers=t.auth)
    renamed = api.patch(f"/v1/users/{t.user}", json={"name": " \t"}, headers=t.auth)
    for response in (created, renamed):
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "name"
        assert "more than spaces" in response.json()["detail"]
    assert _users(api, t.auth) == before


def test_an_unknown_permission_in_restrictions_is_refused_naming_the_field(api: Any) -> None:
    t = tenant(api, number=None)
    before = _users(api, t.auth)
    body = {"name": "Bo", "restrictions": ["bogus"]}
    created = api.post("/v1/users", json=body, headers=t.auth)
    changed = api.patch(f"/v1/users/{t.user}", json={"restrictions": ["bogus"]}, headers=t.auth)
    for response in (created, changed):
        assert response.status_code == 422, response.text
        problem = response.json()
        assert (problem["code"], problem["field"]) == ("unknown_permission", "restrictions")
        assert "bogus" in problem["detail"]
    assert _users(api, t.auth) == before


def test_changing_a_user_of_an_unknown_account_says_the_account_is_missing(api: Any) -> None:
    listed = api.get("/v1/admin/accounts/999999/users", headers=ADMIN)
    changed = api.patch(
        "/v1/admin/accounts/999999/users/usr_x", json={"role": "viewer"}, headers=ADMIN
    )
    assert listed.status_code == changed.status_code == 404
    assert listed.json()["code"] == changed.json()["code"] == "not_found"
    assert changed.json()["detail"] == "No account 999999."  # it named the user
