"""Calls: authorize holds the first increments, extend holds more, complete prices every leg
and settles; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import apikit
from apikit import tenant


def test_a_70_second_us_call_bills_two_minutes_and_releases_the_rest(api: Any) -> None:
    t = tenant(api)
    held = t.authorize()
    assert held.status_code == 201, held.text
    call = held.json()
    assert call["state"] == "authorized"
    assert call["max_duration_seconds"] == 300  # five minutes held at $0.013: $0.065
    assert call["held"] == "0.0650"
    assert call["balance"]["held"] == "0.0650"
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 70})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "completed"
    assert body["amount"] == "0.0260"  # 2 x $0.013: calls round to the minute, not the cent
    assert body["lines"][0]["quantity"] == "2"
    assert body["balance"]["held"] == "0.0000"
    assert body["balance"]["available"] == "0.9740"
    assert t.get(f"/v1/calls/{call['id']}").json()["amount"] == "0.0260"


def test_a_forwarded_call_is_billed_as_two_legs(api: Any) -> None:
    t = tenant(api)
    call = t.authorize("inbound").json()
    body = {"duration": 70, "forward": {"to": "+14155550122", "duration": 60}}
    done = t.post(f"/v1/calls/{call['id']}/complete", body).json()
    kinds = [line["description"].split(" (")[0] for line in done["lines"]]
    assert kinds == ["inbound leg", "outbound leg"]
    # inbound 2 min x $0.0085 = $0.017; outbound 1 min x $0.013
    assert [line["amount"] for line in done["lines"]] == ["0.0170", "0.0130"]
    assert done["amount"] == "0.0300"


def test_a_call_transferred_to_users_adds_two_legs_per_transfer(api: Any) -> None:
    t = tenant(api, credit="5.00")
    call = t.authorize().json()
    transfer = {"kind": "user", "to": "+14155550133", "outbound_duration": 10}
    body = {
        "duration": 30,
        "transfers": [{**transfer, "inbound_duration": 50}, {**transfer, "inbound_duration": 5}],
    }
    done = t.post(f"/v1/calls/{call['id']}/complete", body).json()
    assert len(done["lines"]) == 5  # original + 2 x (outbound by the transferrer + answered)


def test_a_call_transferred_to_an_external_number_adds_one_leg(api: Any) -> None:
    t = tenant(api)
    call = t.authorize().json()
    body = {
        "duration": 30,
        "transfers": [{"kind": "external", "to": "+14155550144", "outbound_duration": 60}],
    }
    done = t.post(f"/v1/calls/{call['id']}/complete", body).json()
    assert len(done["lines"]) == 2


def test_the_caller_ids_country_prices_an_international_call(api: Any) -> None:
    t = tenant(api)
    call = t.authorize(other="+61412345678").json()
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 60}).json()
    assert "from +14155550100 to +61412345678" in done["lines"][0]["description"]
    assert done["lines"][0]["rate"].startswith("default@")


def test_no_credit_for_the_first_increment_is_402_with_zero_duration(api: Any) -> None:
    apikit.import_tiny_card(api)
    t = tenant(api, plan="trial", rate_card="tiny", credit="1.00")  # nothing after the number
    refused = t.authorize()
    assert refused.status_code == 402
    assert refused.json()["code"] == "insufficient_credit"
    assert refused.json()["max_duration_seconds"] == 0
    assert t.balance()["held"] == "0.0000"


def test_the_hold_covers_what_the_credit_allows_and_extend_holds_more(api: Any) -> None:
    apikit.import_tiny_card(api)
    t = tenant(api, plan="trial", rate_card="tiny", credit="1.03")  # $0.03 after the number
    call = t.authorize().json()
    assert call["max_duration_seconds"] == 120  # 2 min = $0.026; 3 min = $0.039
    refused = t.post(f"/v1/calls/{call['id']}/extend", {})
    assert (refused.status_code, refused.json()["code"]) == (402, "insufficient_credit")
    apikit.grant(api, t.account_id, "1.00")
    extended = t.post(f"/v1/calls/{call['id']}/extend", {})
    assert extended.status_code == 200, extended.text
    assert extended.json()["max_duration_seconds"] == 420
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 400}).json()
    assert done["amount"] == "0.0910"  # 7 min x $0.013
    assert t.balance()["held"] == "0.0000"


def test_a_completed_call_cannot_be_extended_or_completed_again(api: Any) -> None:
    t = tenant(api)
    call = t.authorize().json()
    assert t.post(f"/v1/calls/{call['id']}/complete", {"duration": 0}).status_code == 200
    assert t.post(f"/v1/calls/{call['id']}/extend", {}).status_code == 409
    again = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 5})
    assert (again.status_code, again.json()["code"]) == (409, "call_not_active")


def test_an_unanswered_call_costs_nothing(api: Any) -> None:
    t = tenant(api)
    call = t.authorize().json()
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 0}).json()
    assert done["amount"] == "0.0000"
    assert t.balance()["available"] == "1.0000"


def test_a_user_restricted_from_calling_is_refused(api: Any) -> None:
    t = tenant(api)
    api.patch(f"/v1/users/{t.user}", json={"restrictions": ["calls.make"]}, headers=t.auth)
    refused = t.authorize()
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")


def test_an_inbound_call_must_arrive_on_an_active_number_of_the_account(api: Any) -> None:
    owner = tenant(api, credit="5.00")
    other = tenant(api, credit="5.00", number="+14155550177")
    before = other.balance()
    body = {"direction": "inbound", "from": "+14155550111", "to": owner.number, "user": other.user}
    refused = other.post("/v1/calls", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "number_not_receiving"
    assert other.balance() == before  # nothing held

    released = api.delete(f"/v1/numbers/{owner.number_id}", headers=owner.auth)
    assert released.status_code == 200, released.text
    body = {"direction": "inbound", "from": "+14155550111", "to": owner.number, "user": owner.user}
    refused = owner.post("/v1/calls", body)
    assert refused.status_code == 422
    assert refused.json()["code"] == "number_not_receiving"
    # named as released, as for SMS (it said "is not a number of this account")
    assert refused.json()["detail"] == (
        f"{owner.number} is released; calls are received only on active numbers."
    )


def test_transfers_null_means_no_transfers_and_replays_a_completion_sent_with_an_empty_list(
    api: Any,
) -> None:
    t = tenant(api, credit="1.00", number="+14155550100")
    call = t.authorize().json()
    path = f"/v1/calls/{call['id']}/complete"
    done = t.post(path, {"duration": 70, "transfers": []}, key="done")
    assert done.status_code == 200, done.text
    again = t.post(path, {"duration": 70, "transfers": None, "forward": None}, key="done")
    assert (again.status_code, again.content) == (200, done.content)
    other = t.authorize().json()
    nulls = t.post(f"/v1/calls/{other['id']}/complete", {"duration": 70, "transfers": None})
    assert nulls.status_code == 200, nulls.text
    assert nulls.json()["amount"] == done.json()["amount"]
