"""A body member an endpoint does not take is a 422 naming it and the members the object does
take (pydantic's own words were "Extra inputs are not permitted", leaving the caller to guess
which spelling was wanted: `status` or `subscription_status`?). Nothing changes."""

from __future__ import annotations

from typing import Any

import apikit
from apikit import ADMIN, tenant


def _refusal(response: Any) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["errors"][0]["field"] == body["field"]
    return body["field"], body["detail"]


def test_an_unknown_member_of_an_admin_patch_names_the_members_it_takes(api: Any) -> None:
    t = tenant(api, number=None)
    before = api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN).json()
    refused = api.patch(
        f"/v1/admin/accounts/{t.account_id}",
        json={"subscription_status": "canceled"},
        headers={**ADMIN, **apikit.idem()},
    )
    assert _refusal(refused) == (
        "subscription_status",
        "subscription_status: not a member of this object, which takes plan, status, "
        "rate_card, low_balance_threshold",
    )
    assert api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN).json() == before


def test_members_are_named_as_the_client_writes_them_aliases_included(api: Any) -> None:
    t = tenant(api)
    before = t.balance()
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user, "media_url": "x"}
    field, detail = _refusal(t.post("/v1/messages", body))
    assert field == "media_url"
    # `from` is the alias of the model's `from_` field: the caller writes `from`
    assert detail.startswith("media_url: not a member of this object, which takes from, to, ")
    assert t.balance() == before


def test_an_unknown_member_inside_a_list_item_names_that_items_members(api: Any) -> None:
    t = tenant(api, credit="5.00")
    call = t.authorize()
    assert call.status_code == 201, call.text
    transfer = {"kind": "external", "to": "+14155550122", "outbound_duration": 10, "cost": 1}
    body = {"duration": 30, "transfers": [transfer]}
    field, detail = _refusal(t.post(f"/v1/calls/{call.json()['id']}/complete", body))
    assert field == "transfers.0.cost"
    assert detail.startswith("transfers.0.cost: not a member of this object, which takes ")
    assert detail.endswith("which takes kind, to, outbound_duration, inbound_duration, caller_id")


def test_a_member_sent_to_an_object_that_takes_none_says_so(api: Any) -> None:
    t = tenant(api, credit="5.00")
    call = t.authorize()
    assert call.status_code == 201, call.text
    field, detail = _refusal(t.post(f"/v1/calls/{call.json()['id']}/extend", {"minutes": 5}))
    assert (field, detail) == ("minutes", "minutes: not a member of this object, which takes none")
