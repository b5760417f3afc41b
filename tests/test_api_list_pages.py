"""`GET /v1/numbers`, `GET /v1/keys` and `GET /v1/admin/keys` answer a page at a time with a
`next_cursor`, as `GET /v1/ledger` does (before 1 Dec's third session they returned every row:
100,000 keys took 1.3 s and 13 MB); key times are ISO 8601 like every other time of the API.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

import apikit
from apikit import ADMIN, tenant

# US local numbers are $1 a month on the default card: $10 of credit rents them all
NUMBERS = [f"+1415555{n:04d}" for n in range(200, 205)]


def _all_pages(
    get: Any, path: str, item: str, limit: int, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a listing, following `next_cursor`; also how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = get(path, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body[item]) <= limit
        items += body[item]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def _rent_all(api: httpx.Client) -> apikit.Tenant:
    t = tenant(api, credit="10.00", number=None)
    for e164 in NUMBERS:
        assert t.post("/v1/numbers", {"e164": e164}).status_code == 201
    return t


def test_numbers_come_a_page_at_a_time_oldest_first_and_every_one_once(api: Any) -> None:
    t = _rent_all(api)
    whole = t.get("/v1/numbers").json()
    assert [n["e164"] for n in whole["numbers"]] == NUMBERS
    assert whole["next_cursor"] is None  # the default page (100) holds them all
    paged, pages = _all_pages(t.get, "/v1/numbers", "numbers", 2)
    assert [n["e164"] for n in paged] == NUMBERS
    assert pages == 3  # 2, 2, 1
    exact, pages = _all_pages(t.get, "/v1/numbers", "numbers", 5)
    assert (len(exact), pages) == (5, 1)  # a full last page says so: no empty page after it


def test_numbers_can_be_listed_by_state(api: Any) -> None:
    t = _rent_all(api)
    first = t.get("/v1/numbers").json()["numbers"][0]
    released = api.delete(f"/v1/numbers/{first['id']}", headers=t.auth)
    assert released.status_code == 200, released.text
    active, _ = _all_pages(t.get, "/v1/numbers", "numbers", 2, status="active")
    assert [n["e164"] for n in active] == NUMBERS[1:]
    gone = t.get("/v1/numbers", status="released").json()
    assert [n["e164"] for n in gone["numbers"]] == [NUMBERS[0]]
    refused = t.get("/v1/numbers", status="lost")
    assert refused.status_code == 422
    assert refused.json()["field"] == "status"


def test_a_numbers_cursor_never_reaches_another_accounts_numbers(api: Any) -> None:
    owner = _rent_all(api)
    other = tenant(api, number="+14155550100")
    first = owner.get("/v1/numbers", limit=1).json()
    # the owner's cursor, used by another account, pages through that account's numbers only
    page = other.get("/v1/numbers", cursor=first["next_cursor"]).json()
    assert {n["e164"] for n in page["numbers"]} <= {"+14155550100"}


def test_a_malformed_numbers_cursor_or_limit_is_a_422_naming_it(api: Any) -> None:
    t = tenant(api)
    for params, field in (
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "1" * 19}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
    ):
        refused = t.get("/v1/numbers", **params)
        assert refused.status_code == 422, params
        assert refused.json()["field"] == field


def test_an_accounts_keys_come_a_page_at_a_time_with_iso_times(api: Any) -> None:
    t = tenant(api, number=None)
    for n in range(4):
        assert t.post("/v1/keys", {"name": f"k{n}"}).status_code == 201
    revoked = t.get("/v1/keys").json()["keys"][1]["id"]
    assert api.delete(f"/v1/keys/{revoked}", headers=t.auth).status_code == 200
    whole = t.get("/v1/keys").json()
    assert whole["next_cursor"] is None
    assert [k["name"] for k in whole["keys"]] == ["", "k0", "k1", "k2", "k3"]
    paged, pages = _all_pages(t.get, "/v1/keys", "keys", 2)
    assert [k["id"] for k in paged] == [k["id"] for k in whole["keys"]]
    assert pages == 3
    for k in whole["keys"]:
        assert datetime.fromisoformat(k["created_at"]).utcoffset() == timedelta(0)
        if k["id"] == revoked:
            assert datetime.fromisoformat(k["revoked_at"]) >= datetime.fromisoformat(
                k["created_at"]
            )
        else:
            assert k["revoked_at"] is None


def test_the_admin_pages_through_every_key_and_through_one_accounts(api: Any) -> None:
    first, second = tenant(api, number=None), tenant(api, number=None)
    assert first.post("/v1/keys", {"name": "more"}).status_code == 201
    every = api.get("/v1/admin/keys", headers=ADMIN, params={"limit": 500}).json()["keys"]

    def admin_get(path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = api.get(path, headers=ADMIN, params=params)
        return response

    paged, _ = _all_pages(admin_get, "/v1/admin/keys", "keys", 1)
    assert [k["id"] for k in paged] == [k["id"] for k in every]
    assert {first.account_id, second.account_id} <= {k["account_id"] for k in paged}
    own, pages = _all_pages(admin_get, "/v1/admin/keys", "keys", 1, account_id=first.account_id)
    assert [k["account_id"] for k in own] == [first.account_id] * 2
    assert pages == 2


def test_a_key_cursor_of_another_list_is_refused_not_answered_with_a_page(api: Any) -> None:
    first, second = tenant(api, number=None), tenant(api, number=None)
    foreign = second.get("/v1/keys").json()["keys"][0]["id"]
    for response in (
        first.get("/v1/keys", cursor=foreign),  # another account's key: it is not in this list
        first.get("/v1/keys", cursor="key_0000"),  # no such key
        api.get(
            "/v1/admin/keys",
            headers=ADMIN,
            params={"account_id": first.account_id, "cursor": foreign},
        ),
    ):
        assert response.status_code == 422, response.text
        body = response.json()
        assert (body["code"], body["field"]) == ("invalid_request", "cursor")
        assert "next_cursor" in body["detail"]
    # the admin's list of every key has that key in it: its cursor is good there
    assert api.get("/v1/admin/keys", headers=ADMIN, params={"cursor": foreign}).status_code == 200


def test_an_accounts_users_come_a_page_at_a_time_for_it_and_for_the_admin(api: Any) -> None:
    t = tenant(api, number=None)  # `Ada`, made by the tenant helper
    for name in ("Bo", "Cy", "Di"):
        assert api.post("/v1/users", json={"name": name}, headers=t.auth).status_code == 201
    paged, pages = _all_pages(t.get, "/v1/users", "users", 3)
    assert ([u["name"] for u in paged], pages) == (["Ada", "Bo", "Cy", "Di"], 2)

    def admin_get(path: str, **params: Any) -> httpx.Response:
        response: httpx.Response = api.get(path, headers=ADMIN, params=params)
        return response

    path = f"/v1/admin/accounts/{t.account_id}/users"
    assert _all_pages(admin_get, path, "users", 1) == (paged, 4)


def test_a_user_cursor_of_another_account_is_refused_naming_it(api: Any) -> None:
    first, second = tenant(api, number=None), tenant(api, number=None)
    refused = first.get("/v1/users", cursor=second.user)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == ("invalid_request", "cursor")
    assert first.get("/v1/users", cursor=first.user).json() == {"users": [], "next_cursor": None}
