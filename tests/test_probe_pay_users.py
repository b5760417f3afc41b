"""User and key bodies refuse unknown fields: a misspelt `restrictions` or `role` is a 422 that
names it, not a 200 that silently left the user with every permission of a member."""

from __future__ import annotations

from typing import Any

from apikit import ADMIN, tenant


def test_a_misspelt_restriction_is_refused_and_the_user_keeps_unchanged(api: Any) -> None:
    t = tenant(api, number=None)
    response = api.patch(f"/v1/users/{t.user}", json={"restriction": ["sms.send"]}, headers=t.auth)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "restriction"
    user = api.get(f"/v1/users/{t.user}", headers=t.auth).json()
    assert user["restrictions"] == []


def test_a_new_user_with_a_misspelt_role_is_refused_not_made_a_member(api: Any) -> None:
    t = tenant(api, number=None)
    before = api.get("/v1/users", headers=t.auth).json()["users"]
    response = api.post("/v1/users", json={"name": "Eve", "roles": "viewer"}, headers=t.auth)
    assert response.status_code == 422, response.text
    assert api.get("/v1/users", headers=t.auth).json()["users"] == before


def test_an_admin_user_patch_with_an_unknown_field_is_refused(api: Any) -> None:
    t = tenant(api, number=None)
    path = f"/v1/admin/accounts/{t.account_id}/users/{t.user}"
    response = api.patch(path, json={"restricted": ["calls.make"]}, headers=ADMIN)
    assert response.status_code == 422, response.text


def test_a_key_body_with_an_unknown_field_is_refused_and_creates_no_key(api: Any) -> None:
    t = tenant(api, number=None)
    before = api.get("/v1/keys", headers=t.auth).json()["keys"]
    response = api.post("/v1/keys", json={"name": "ci", "admin": True}, headers=t.auth)
    assert response.status_code == 422, response.text
    assert api.get("/v1/keys", headers=t.auth).json()["keys"] == before
