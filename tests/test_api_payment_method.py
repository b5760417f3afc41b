"""`PUT /v1/settings/payment-method` saves the card purchases and auto-recharges charge (the
provider's customer and payment method). Until the third session of 1 Dec only an embedded
wallet could save it, so a service on the `stripe` provider could never be paid over HTTP:
`POST /v1/credits` answered "no saved Stripe customer" whatever the platform did. On SQLite
and PostgreSQL; the purchase goes through the local fake Stripe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import _client
from fakestripe import fake_stripe

import apikit
from apikit import tenant

CARD = {"customer": "cus_Q2x9", "payment_method": "pm_card_visa"}


def _put(t: apikit.Tenant, body: Any) -> Any:
    return t.client.put("/v1/settings/payment-method", json=body, headers=t.auth)


def test_a_saved_card_shows_in_the_balance_and_null_clears_it(api: Any) -> None:
    t = tenant(api, number=None)
    saved = _put(t, CARD)
    assert saved.status_code == 200, saved.text
    auto = saved.json()["auto_recharge"]
    assert (auto["customer"], auto["payment_method"]) == ("cus_Q2x9", "pm_card_visa")
    # saving the card sets nothing up: auto-recharge reads as never configured (it showed an
    # amount of 0.000001, the stored row's placeholder, before)
    assert (auto["enabled"], auto["threshold"], auto["amount"]) == (False, None, None)
    assert t.balance()["auto_recharge"] == auto
    cleared = _put(t, {"customer": "cus_Q2x9", "payment_method": None}).json()["auto_recharge"]
    assert (cleared["customer"], cleared["payment_method"]) == ("cus_Q2x9", None)


def test_a_card_saved_after_auto_recharge_was_set_up_leaves_its_settings(api: Any) -> None:
    t = tenant(api, number=None)
    on = {"enabled": True, "threshold": "5.00", "amount": "20.00"}
    assert t.client.put("/v1/settings/auto-recharge", json=on, headers=t.auth).status_code == 200
    auto = _put(t, CARD).json()["auto_recharge"]
    assert (auto["enabled"], auto["threshold"], auto["amount"]) == (True, "5.0000", "20.0000")
    assert auto["payment_method"] == "pm_card_visa"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer": "cus_1"}, "payment_method"),  # left out: never a silent clear
        ({"customer": "", "payment_method": "pm_1"}, "customer"),
        ({"customer": "cus_1", "payment_method": "pm\u00001"}, "payment_method"),
        ({"customer": "c" * 201, "payment_method": "pm_1"}, "customer"),
        ({**CARD, "card_number": "4242"}, "card_number"),
    ],
)
def test_a_malformed_card_is_a_422_naming_the_member_and_changes_nothing(
    api: Any, body: dict[str, Any], field: str
) -> None:
    t = tenant(api, number=None)
    assert _put(t, CARD).status_code == 200
    before = t.balance()
    refused = _put(t, body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert t.balance() == before


def test_saving_a_card_for_a_user_without_billing_manage_is_403(api: Any) -> None:
    t = tenant(api, number=None)  # `Ada` is a member: no billing.manage
    refused = _put(t, {**CARD, "user": t.user})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "permission_denied"
    assert t.balance()["auto_recharge"]["customer"] is None


def test_a_past_due_account_may_save_a_new_card_but_not_turn_auto_recharge_on(api: Any) -> None:
    t = tenant(api, number=None)
    apikit.set_status(api, t.account_id, "past_due")
    assert _put(t, CARD).status_code == 200  # a new card is how a past-due account pays again
    on = {"enabled": True, "threshold": "5.00", "amount": "20.00"}
    refused = t.client.put("/v1/settings/auto-recharge", json=on, headers=t.auth)
    assert refused.json()["code"] == "subscription_inactive"


def test_another_accounts_key_never_touches_this_accounts_card(api: Any) -> None:
    owner, intruder = tenant(api, number=None), tenant(api, number=None)
    assert _put(owner, CARD).status_code == 200
    assert _put(intruder, {"customer": "cus_evil", "payment_method": "pm_evil"}).status_code == 200
    assert owner.balance()["auto_recharge"]["customer"] == "cus_Q2x9"
    assert intruder.balance()["auto_recharge"]["customer"] == "cus_evil"


@pytest.fixture
def stripe_api(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """The app on the `stripe` provider, pointed at the local fake Stripe."""
    with fake_stripe() as (base, seen):
        for client in _client(
            db_url,
            tmp_path,
            payment_provider="stripe",
            stripe_api_key="sk_test_x",
            stripe_api_base=base,
        ):
            yield client, seen


def test_a_purchase_over_http_charges_the_card_saved_over_http(
    stripe_api: tuple[Any, Any],
) -> None:
    api, seen = stripe_api
    t = tenant(api, number=None)
    without = t.post("/v1/credits", {"amount": "25.00"})
    assert without.status_code == 422, without.text
    assert without.json()["code"] == "payment_setup_invalid"
    assert "PUT /v1/settings/payment-method" in without.json()["detail"]
    assert _put(t, CARD).status_code == 200
    bought = t.post("/v1/credits", {"amount": "25.00"})
    assert bought.status_code == 201, bought.text
    assert bought.json()["balance"]["paid"] == "25.0000"
    paid = [r for r in seen.requests if r.get("path") == "/v1/payment_intents"]
    assert [(r["form"]["customer"], r["form"]["payment_method"]) for r in paid][-1] == (
        "cus_Q2x9",
        "pm_card_visa",
    )


def test_a_threshold_stored_while_off_shows_without_the_placeholder_amount(api: Any) -> None:
    t = tenant(api, number=None)
    assert _put(t, CARD).status_code == 200
    off = {"enabled": False, "threshold": "5.00"}
    answer = t.client.put("/v1/settings/auto-recharge", json=off, headers=t.auth)
    assert answer.status_code == 200, answer.text
    auto = answer.json()["auto_recharge"]
    assert (auto["enabled"], auto["threshold"], auto["amount"]) == (False, "5.0000", None)
