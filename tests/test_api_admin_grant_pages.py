"""`GET /v1/admin/accounts/{id}/grants` answers a page at a time in consumption order, with a
`next_cursor` as every other list (until 1 Dec's last session it returned every grant: one
free grant a month plus every recharge, hundreds after a few years), and `live=true` keeps the
grants with credit left. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import apikit
from apikit import ADMIN, tenant


def _grants(api: Any, account_id: int, **params: Any) -> Any:
    return api.get(f"/v1/admin/accounts/{account_id}/grants", headers=ADMIN, params=params)


def _every_page(api: Any, account_id: int, limit: int, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = _grants(api, account_id, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["grants"]) <= limit
        found += body["grants"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def _account_with_grants(api: Any) -> apikit.Tenant:
    t = tenant(api, number=None)  # the startup plan's free credit: one grant
    for amount in ("1.00", "2.00", "3.00"):
        apikit.grant(api, t.account_id, amount)
    apikit.grant(api, t.account_id, "0.50", kind="promotional")
    return t


def test_grants_come_a_page_at_a_time_in_consumption_order_each_once(api: Any) -> None:
    t = _account_with_grants(api)
    whole = _grants(api, t.account_id).json()
    assert whole["next_cursor"] is None  # the default page (100) holds them all
    ids = [g["id"] for g in whole["grants"]]
    assert len(ids) == 5
    assert whole["grants"][0]["kind"] == "free_monthly"  # used first, listed first
    assert whole["grants"][-1]["kind"] == "purchased"
    for limit in (1, 2, 5):
        assert [g["id"] for g in _every_page(api, t.account_id, limit)] == ids


def test_live_grants_leave_out_the_spent_ones_and_a_spent_cursor_still_marks_its_place(
    api: Any,
) -> None:
    t = tenant(api, number=None)  # the startup plan: 2.00 of free credit, used first
    for amount in ("1.00", "2.00", "3.00"):
        apikit.grant(api, t.account_id, amount)
    first = _grants(api, t.account_id, limit=2).json()
    free, spent = (g["id"] for g in first["grants"])  # the free grant, then the 1.00
    assert first["next_cursor"] == str(spent)
    for e164 in ("+14155550200", "+14155550201", "+14155550202"):  # $1.00 a month each
        assert t.post("/v1/numbers", {"e164": e164}).status_code == 201
    every = _grants(api, t.account_id).json()["grants"]
    rest = [g["id"] for g in every if g["id"] not in (free, spent)]
    assert [g["remaining"] for g in every if g["id"] in (free, spent)] == ["0.0000", "0.0000"]
    live = _grants(api, t.account_id, live="true").json()
    assert [g["id"] for g in live["grants"]] == rest
    # the cursor names a grant spent since: the live page after it is still the rest
    after = _grants(api, t.account_id, live="true", cursor=first["next_cursor"]).json()
    assert [g["id"] for g in after["grants"]] == rest
    assert after["next_cursor"] is None


def test_a_cursor_that_is_not_a_grant_of_the_account_is_a_422_naming_it(api: Any) -> None:
    t = _account_with_grants(api)
    other = _account_with_grants(api)
    foreign = _grants(api, other.account_id).json()["grants"][0]["id"]
    for cursor in (str(foreign), "999999999"):
        response = _grants(api, t.account_id, cursor=cursor)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "invalid_request"
        assert body["field"] == "cursor"
    for bad in ("abc", "-1"):
        response = _grants(api, t.account_id, cursor=bad)
        assert response.status_code == 422
    assert _grants(api, t.account_id, limit=0).status_code == 422
    assert _grants(api, t.account_id, limit=501).status_code == 422
