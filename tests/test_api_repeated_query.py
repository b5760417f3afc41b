"""A query parameter that takes one value, given twice, is a 422 naming it (FastAPI silently used
the last value); parameters documented as repeatable (`group_by`) still take several."""

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
