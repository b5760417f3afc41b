"""`GET /v1/usage` names the currency of its amounts, as every other money answer of the API
does (the README: money is always a decimal string next to a `currency`)."""

from __future__ import annotations

from typing import Any

from talktime import money
from talktime.wallet import Wallet

from apikit import ADMIN, tenant


def test_a_usage_report_names_the_accounts_currency(api: Any) -> None:
    t = tenant(api, credit="5.00")
    body = t.get("/v1/usage").json()
    assert body["currency"] == "USD"
    assert body["rows"] == [{"count": 1, "quantity": 1, "amount": "1.0000"}]  # the number
    wallet = Wallet(api.app.state.engine)
    wallet.upsert_plan("euro", money.DOLLAR)
    account = wallet.create_account("Euro GmbH", "euro", "create-eur", currency="EUR")
    response = api.post(f"/v1/admin/accounts/{account.account.id}/keys", json={}, headers=ADMIN)
    assert response.status_code == 201, response.text
    auth = {"Authorization": f"Bearer {response.json()['key']}"}
    report = api.get("/v1/usage", headers=auth)
    assert report.status_code == 200, report.text
    assert report.json()["currency"] == "EUR"  # was missing: 1.0000 of what?
    assert api.get("/v1/balance", headers=auth).json()["currency"] == "EUR"
