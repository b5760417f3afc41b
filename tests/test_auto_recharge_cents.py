"""`PUT /v1/settings/auto-recharge` on both backends: an amount no card payment can take (not
whole cents) is refused when turning auto-recharge on, as `POST /v1/credits` refuses buying it;
the threshold, never charged, may be any amount, and turning auto-recharge off always works."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from talktime.config import Settings
from talktime.service import credits
from talktime.service.errors import InvalidRequestError
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


def test_turning_auto_recharge_off_needs_no_threshold_nor_amount_and_keeps_the_stored_ones(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    never_set = api.put(PATH, json={"enabled": False}, headers=t.auth)
    assert never_set.status_code == 200, never_set.text  # was 422 "Field required"
    assert never_set.json()["auto_recharge"] == {
        "enabled": False,
        "threshold": None,
        "amount": None,
        "disabled_reason": None,
        "customer": None,
        "payment_method": None,
    }
    on = {"enabled": True, "threshold": "5.00", "amount": "20.00"}
    assert api.put(PATH, json=on, headers=t.auth).status_code == 200
    for off in (
        {"enabled": False},
        {"enabled": False, "threshold": "0", "amount": "0"},  # was 422: amount above zero
        {"enabled": False, "threshold": None, "amount": None},
    ):
        response = api.put(PATH, json=off, headers=t.auth)
        assert response.status_code == 200, (off, response.text)
        stored = response.json()["auto_recharge"]
        assert (stored["enabled"], stored["amount"]) == (False, "20.0000"), off
    assert t.balance()["auto_recharge"]["threshold"] == "0.0000"  # a threshold given is stored
    again = api.put(PATH, json={"enabled": False, "threshold": "3.00"}, headers=t.auth)
    assert again.json()["auto_recharge"]["threshold"] == "3.0000"


@pytest.mark.parametrize(
    ("body", "fields", "message"),
    [
        ({"enabled": True}, ["threshold", "amount"], "required when `enabled` is true"),
        ({"enabled": True, "threshold": "1.00"}, ["amount"], "required when `enabled` is true"),
        ({"enabled": True, "amount": "20.00"}, ["threshold"], "required when `enabled` is true"),
        ({"enabled": True, "threshold": None, "amount": "20.00"}, ["threshold"], "required"),
        ({"enabled": True, "threshold": "1.00", "amount": "0"}, ["amount"], "more than zero"),
    ],
)
def test_turning_auto_recharge_on_without_a_threshold_or_an_amount_is_a_422_naming_it(
    api: Any, body: dict[str, Any], fields: list[str], message: str
) -> None:
    t = tenant(api, number=None)
    before = t.balance()["auto_recharge"]
    response = api.put(PATH, json=body, headers=t.auth)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_request"
    assert [e["field"] for e in problem["errors"]] == fields
    assert problem["detail"] == f"{fields[0]}: {problem['errors'][0]['message']}"
    assert message in problem["detail"]
    assert t.balance()["auto_recharge"] == before


def test_the_schema_requires_a_threshold_and_an_amount_only_to_turn_auto_recharge_on(
    api: Any,
) -> None:
    model = api.get("/openapi.json").json()["components"]["schemas"]["AutoRechargeIn"]
    assert model["required"] == ["enabled"]
    assert model["if"] == {"properties": {"enabled": {"const": True}}}
    assert model["then"]["required"] == ["threshold", "amount"]


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


def test_the_service_refuses_turning_auto_recharge_on_without_an_amount_naming_it(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    with pytest.raises(InvalidRequestError) as refused:
        credits.set_auto_recharge(
            engine,
            account,
            enabled=True,
            threshold=0,
            amount=None,
            settings=Settings(database_url=str(engine.url)),
        )
    assert refused.value.extra["field"] == "amount"
    # off with a threshold and no amount, none stored: nothing to keep, nothing written
    off = credits.set_auto_recharge(
        engine,
        account,
        enabled=False,
        threshold=1,
        amount=None,
        settings=Settings(database_url=str(engine.url)),
    )
    assert off["auto_recharge"]["enabled"] is False
    with engine.connect() as conn:
        assert rc.get_settings_of(conn, account) is None
