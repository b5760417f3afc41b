"""`GET /v1/admin/accounts` lists the accounts a page at a time, optionally of one status or
plan. Until the third session of 1 Dec an operator could read an account only by its id (the
list was `talktime accounts` on the database host). On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apikit
from apikit import ADMIN, account_from_last_month, tenant


def _list(api: Any, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/admin/accounts", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_accounts_come_a_page_at_a_time_oldest_first_each_once(api: Any) -> None:
    ids = [tenant(api, number=None).account_id for _ in range(5)]
    assert [a["id"] for a in _list(api)["accounts"]] == ids
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = _list(api, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [a["id"] for a in page["accounts"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (ids, 3)


def test_an_account_in_the_list_reads_as_its_own_page_does_without_the_balance(api: Any) -> None:
    t = tenant(api, number=None)
    listed = _list(api)["accounts"][0]
    own = api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN).json()
    assert listed == {k: v for k, v in own.items() if k != "balance"}


def test_the_list_filters_by_status_and_by_plan(api: Any) -> None:
    startup = tenant(api, number=None)
    business = tenant(api, plan="business", number=None)
    canceled = tenant(api, number=None)
    apikit.set_status(api, canceled.account_id, "canceled")
    assert [a["id"] for a in _list(api, status="canceled")["accounts"]] == [canceled.account_id]
    assert [a["id"] for a in _list(api, status="active")["accounts"]] == [
        startup.account_id,
        business.account_id,
    ]
    assert [a["id"] for a in _list(api, plan="business")["accounts"]] == [business.account_id]
    assert _list(api, plan="nope") == {"accounts": [], "next_cursor": None}


def test_an_account_whose_period_ended_shows_the_period_holding_now(
    db_url: str, tmp_path: Path
) -> None:
    # the cycle has not opened this month for it: the list says what its own page says
    with account_from_last_month(db_url, tmp_path / "cards", "startup", "2.00") as old:
        listed = _list(old.client)["accounts"][0]
        assert listed["period_start"] == old.this_month.isoformat()
        own = old.client.get(f"/v1/admin/accounts/{old.account}", headers=ADMIN).json()
        assert (listed["period_start"], listed["period_end"]) == (
            own["period_start"],
            own["period_end"],
        )


def test_the_account_list_is_the_admins_and_refuses_bad_parameters(api: Any) -> None:
    t = tenant(api, number=None)
    refused = api.get("/v1/admin/accounts", headers=t.auth)
    assert refused.status_code == 403
    for params, field in (
        ({"status": "closed"}, "status"),
        ({"cursor": "x"}, "cursor"),
        ({"limit": 501}, "limit"),
        ({"plan": "p" * 65}, "plan"),
    ):
        response = api.get("/v1/admin/accounts", headers=ADMIN, params=params)
        assert response.status_code == 422, params
        assert response.json()["field"] == field
