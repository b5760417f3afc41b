"""Money fields above the wallet's bound (2^62 micro-units) are a 422 naming the field, in the
caller's decimal, before anything runs: they were a 400 `invalid_amount` whose sentence spoke
micro-units ("the purchase amount 5000000000000000000 is too large") for "5000000000000"."""

from __future__ import annotations

from typing import Any

import pytest

from apikit import ADMIN, idem, tenant

HUGE = "5000000000000"  # dollars: over 2^62 micro-units, under what a BIGINT holds


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_request"
    assert problem["errors"][0]["field"] == field
    assert "4611686018427.387904" in problem["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/accounts", {"name": "x", "plan": "startup", "credit": HUGE}, "credit"),
        (
            "/v1/admin/accounts",
            {"name": "x", "plan": "startup", "monthly_limit": HUGE},
            "monthly_limit",
        ),
    ],
)
def test_a_huge_amount_creating_an_account_is_a_422_naming_the_field(
    api: Any, path: str, body: dict[str, Any], field: str
) -> None:
    _refused(api.post(path, json=body, headers={**ADMIN, **idem()}), field)


def test_huge_amounts_of_an_account_are_422s_naming_the_field_and_change_nothing(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    before = t.balance()
    _refused(
        api.post(
            f"/v1/admin/accounts/{t.account_id}/grants",
            json={"kind": "promotional", "amount": HUGE},
            headers={**ADMIN, **idem()},
        ),
        "amount",
    )
    _refused(t.post("/v1/credits", {"amount": HUGE}), "amount")
    _refused(
        api.put("/v1/settings/monthly-limit", json={"monthly_limit": HUGE}, headers=t.auth),
        "monthly_limit",
    )
    body = {"enabled": True, "threshold": HUGE, "amount": "20.00"}
    _refused(api.put("/v1/settings/auto-recharge", json=body, headers=t.auth), "threshold")
    assert t.balance() == before
