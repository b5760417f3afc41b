"""Query strings: a parameter that takes one value, given twice, is a 422 naming it (FastAPI used
the last value; `group_by` may repeat), and a time whose "+" arrived as a space says to
encode it."""

from __future__ import annotations

from typing import Any

import apikit


def test_a_single_valued_query_parameter_given_twice_is_a_422_naming_it(api: Any) -> None:
    t = apikit.tenant(api, credit="5.00")
    for query, name in (
        ("kind=usage&kind=grant", "kind"),
        ("limit=1&limit=500", "limit"),
        ("since=2026-01-01T00:00:00Z&since=2027-01-01T00:00:00Z", "since"),
    ):
        response = api.get(f"/v1/ledger?{query}", headers=t.auth)
        assert response.status_code == 422, (query, response.text)
        problem = response.json()
        assert problem["code"] == "invalid_request"
        assert f"`{name}` is given 2 times" in problem["detail"]
        assert problem["field"] == name


def test_a_parameter_given_once_or_a_repeatable_one_is_taken(api: Any) -> None:
    t = apikit.tenant(api, credit="5.00")
    assert api.get("/v1/ledger?kind=grant&limit=5", headers=t.auth).status_code == 200
    usage = api.get("/v1/usage?group_by=channel&group_by=day", headers=t.auth)
    assert usage.status_code == 200, usage.text
    assert api.get("/v1/ledger?kind=grant&kind=grant", headers=t.auth).status_code == 422


def test_a_time_whose_plus_arrived_as_a_space_says_to_encode_it(api: Any) -> None:
    t = apikit.tenant(api, credit="5.00")
    for path in ("/v1/ledger", "/v1/usage"):
        response = api.get(f"{path}?since=2026-01-01T00:00:00+05:30", headers=t.auth)
        assert response.status_code == 422, response.text
        assert "write the offset's '+' as %2B" in response.json()["detail"]
        encoded = api.get(f"{path}?since=2026-01-01T00:00:00%2B05:30", headers=t.auth)
        assert encoded.status_code == 200, encoded.text
    other = api.get("/v1/ledger?since=yesterday", headers=t.auth)
    assert other.status_code == 422
    assert "%2B" not in other.json()["detail"]
