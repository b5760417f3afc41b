"""Account changes during a call: a cancellation or a `calls.make` restriction stops the call
at its next extend (nothing more is held) while completing it still bills what happened; a
card switched mid-call leaves the call priced with the card it was authorized on."""

from __future__ import annotations

from typing import Any

from apikit import ADMIN, Tenant, idem, set_status, tenant
from ratecards import SHIPPED

US = "+14155550111"


def _call(t: Tenant) -> dict[str, Any]:
    body = {"direction": "outbound", "from": t.number, "to": US, "user": t.user}
    response = t.post("/v1/calls", body)
    assert response.status_code == 201, response.text
    call: dict[str, Any] = response.json()
    return call


def _unchanged(t: Tenant, call: dict[str, Any], balance: dict[str, Any]) -> None:
    now = t.get(f"/v1/calls/{call['id']}").json()
    assert (now["held"], now["max_duration_seconds"]) == (
        call["held"],
        call["max_duration_seconds"],
    )
    assert t.balance() == balance


def _complete_bills(t: Tenant, call: dict[str, Any]) -> None:
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 70})
    assert done.status_code == 200, done.text
    assert done.json()["amount"] == "0.0260"  # two started minutes at $0.013
    assert t.balance()["held"] == "0.0000"


def test_a_call_of_a_canceled_account_is_not_extended_and_completes_billed(api: Any) -> None:
    t = tenant(api, credit="5.00")
    call = _call(t)
    set_status(api, t.account_id, "canceled")
    balance = t.balance()
    refused = t.post(f"/v1/calls/{call['id']}/extend", {})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "subscription_inactive"
    assert refused.json()["detail"] == (
        "The account's subscription is canceled; reactivate it to use the API (reading, "
        "revoking keys, releasing numbers and turning auto-recharge off still work). The call "
        "was not extended; complete it with what happened (it is still billed)."
    )
    _unchanged(t, call, balance)
    _complete_bills(t, call)


def test_a_call_whose_user_loses_calls_make_is_not_extended_and_completes_billed(
    api: Any,
) -> None:
    t = tenant(api, credit="5.00")
    call = _call(t)
    path = f"/v1/admin/accounts/{t.account_id}/users/{t.user}"
    assert api.patch(path, json={"restrictions": ["calls.make"]}, headers=ADMIN).status_code == 200
    balance = t.balance()
    refused = t.post(f"/v1/calls/{call['id']}/extend", {})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "permission_denied"
    assert refused.json()["permission"] == "calls.make"
    assert "an admin restricted it" in refused.json()["detail"]
    _unchanged(t, call, balance)
    _complete_bills(t, call)


def test_a_call_extends_again_once_the_subscription_is_active(api: Any) -> None:
    t = tenant(api, credit="5.00")
    call = _call(t)
    set_status(api, t.account_id, "past_due")
    assert t.post(f"/v1/calls/{call['id']}/extend", {}).status_code == 403
    set_status(api, t.account_id, "active")
    extended = t.post(f"/v1/calls/{call['id']}/extend", {})
    assert extended.status_code == 200, extended.text
    assert extended.json()["max_duration_seconds"] == 2 * call["max_duration_seconds"]


def test_a_card_switched_mid_call_leaves_the_call_priced_with_its_own_card(api: Any) -> None:
    t = tenant(api, credit="5.00")
    call = _call(t)
    switched = api.patch(
        f"/v1/admin/accounts/{t.account_id}",
        json={"rate_card": "passthrough"},
        headers={**ADMIN, **idem()},
    )
    assert switched.status_code == 200, switched.text
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 70})
    assert done.status_code == 200, done.text
    assert done.json()["rate_card"] == call["rate_card"] == f"default@{SHIPPED}"
    assert all(line["rate"].startswith("default@") for line in done.json()["lines"])
    again = _call(t)
    assert again["rate_card"] == f"passthrough@{SHIPPED}"
