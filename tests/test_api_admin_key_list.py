"""`GET /v1/admin/keys?account_id=` of an unknown account is a 404, as every admin route that
names an account answers (it was 200 with an empty list, like an account without keys)."""

from __future__ import annotations

from typing import Any

import apikit
from apikit import ADMIN


def test_listing_the_keys_of_an_unknown_account_is_404_as_listing_its_users_is(api: Any) -> None:
    keys = api.get("/v1/admin/keys", params={"account_id": 999}, headers=ADMIN)
    users = api.get("/v1/admin/accounts/999/users", headers=ADMIN)
    assert keys.status_code == users.status_code == 404
    assert keys.json()["code"] == users.json()["code"] == "not_found"
    assert keys.json()["detail"] == users.json()["detail"] == "No account 999."


def test_an_account_without_keys_lists_none_and_a_known_one_lists_its_own(api: Any) -> None:
    created = api.post(
        "/v1/admin/accounts",
        json={"name": "bare", "plan": "startup"},
        headers={**ADMIN, **apikit.idem()},
    )
    assert created.status_code == 201, created.text
    bare = api.get("/v1/admin/keys", params={"account_id": created.json()["id"]}, headers=ADMIN)
    assert bare.status_code == 200
    assert bare.json() == {"keys": []}
    t = apikit.tenant(api, number=None)
    listed = api.get("/v1/admin/keys", params={"account_id": t.account_id}, headers=ADMIN).json()
    assert [k["account_id"] for k in listed["keys"]] == [t.account_id]
