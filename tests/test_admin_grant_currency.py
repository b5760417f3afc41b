"""An admin grant's answer names the account's currency next to its balance, as every other
money answer does (it gave the amounts alone)."""

from __future__ import annotations

from typing import Any

from test_probe_admin_accounts import _euro

from apikit import ADMIN, idem, tenant


def _grant(api: Any, account_id: int) -> dict[str, Any]:
    response = api.post(
        f"/v1/admin/accounts/{account_id}/grants",
        json={"kind": "promotional", "amount": "1.00"},
        headers={**ADMIN, **idem()},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_admin_grant_answers_its_balance_in_the_accounts_currency(api: Any) -> None:
    usd = tenant(api, number=None)
    assert _grant(api, usd.account_id)["balance"]["currency"] == "USD"
    _euro(api)
    body = {"name": "Euro Ltd", "plan": "startup", "rate_card": "euro"}
    created = api.post("/v1/admin/accounts", json=body, headers={**ADMIN, **idem()})
    assert created.status_code == 201, created.text
    answer = _grant(api, created.json()["id"])
    assert answer["balance"]["currency"] == "EUR"
    assert set(answer["balance"]) == {"currency", "free", "paid", "held", "available"}
