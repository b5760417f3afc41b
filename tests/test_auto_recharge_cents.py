"""`PUT /v1/settings/auto-recharge` on both backends: an amount no card payment can take (not
whole cents) is refused when turning auto-recharge on, as `POST /v1/credits` refuses buying it;
the threshold, never charged, may be any amount, and turning auto-recharge off always works."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import recharge as rc
from talktime.wallet.payments import PaymentSetupError
from wallet_helpers import make_wallet

from apikit import tenant

PATH = "/v1/settings/auto-recharge"


def test_turning_auto_recharge_on_with_a_sub_cent_amount_is_refused_like_a_purchase(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    before = t.balance()["auto_recharge"]
    body = {"enabled": True, "threshold": "1.00", "amount": "0.011"}
    refused = api.put(PATH, json=body, headers=t.auth)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "payment_setup_invalid"
    assert problem["field"] == "amount"
    assert "0.0110 USD is not a whole number of cents" in problem["detail"]
    assert t.balance()["auto_recharge"] == before  # nothing stored
    # the same rule and code as buying that amount through a provider that charges cards
    api.app.state.settings = api.app.state.settings.model_copy(update={"payment_provider": "test"})
    purchase = t.post("/v1/credits", {"amount": "0.011"})
    assert (purchase.status_code, purchase.json()["code"]) == (422, "payment_setup_invalid")


def test_a_whole_cent_amount_with_a_sub_cent_threshold_is_accepted(api: Any) -> None:
    t = tenant(api, number=None)
    body = {"enabled": True, "threshold": "0.0050", "amount": "10.01"}
    response = api.put(PATH, json=body, headers=t.auth)
    assert response.status_code == 200, response.text
    stored = response.json()["auto_recharge"]
    assert (stored["enabled"], stored["threshold"], stored["amount"]) == (True, "0.0050", "10.0100")


def test_turning_auto_recharge_off_is_not_refused_for_its_amount(api: Any) -> None:
    t = tenant(api, number=None)
    body = {"enabled": False, "threshold": "1.00", "amount": "0.011"}
    response = api.put(PATH, json=body, headers=t.auth)
    assert response.status_code == 200, response.text
    assert response.json()["auto_recharge"]["enabled"] is False
    again = api.put(PATH, json={**body, "enabled": True}, headers=t.auth)
    assert again.json()["code"] == "payment_setup_invalid"


def test_a_member_without_billing_manage_is_refused_before_the_amount_is_looked_at(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    body = {"enabled": True, "threshold": "1.00", "amount": "0.011", "user": t.user}
    response = api.put(PATH, json=body, headers=t.auth)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "permission_denied"


def test_the_library_refuses_a_sub_cent_recharge_amount_too(engine: sa.Engine) -> None:
    # `wallet.recharge.configure` (embedded use) took any amount; every recharge of it failed
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    with pytest.raises(PaymentSetupError) as refused, engine.begin() as conn:
        rc.configure(conn, account, enabled=True, threshold=0, amount=10_100, now=0)
    assert refused.value.extra["field"] == "amount"
    with engine.connect() as conn:
        assert rc.get_settings_of(conn, account) is None  # nothing stored
    with engine.begin() as conn:  # off: any amount
        assert not rc.configure(
            conn, account, enabled=False, threshold=0, amount=10_100, now=0
        ).enabled
