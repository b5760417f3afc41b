"""Renting numbers over the API, found by probing: which refusal wins, and what it says; on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from talktime.store import make_engine
from talktime.wallet.cycle import run_cycle

import apikit
from apikit import tenant


def test_a_number_another_account_holds_is_409_even_without_credit_and_changes_nothing(
    api: Any,
) -> None:
    owner = tenant(api, credit="10.00", number="+61412345678")  # AU mobile, $6 a month
    other = tenant(api, number=None)  # $2 of free credit: not enough for $6
    before = other.balance()
    refused = other.post("/v1/numbers", {"e164": "+61412345678"})
    # Before: 402 "add credit and try again", which would only have led to this 409, and the
    # 409 said "release it first" of a number only its owner can release.
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "number_in_use"
    assert refused.json()["detail"] == (
        "+61412345678 is rented by another account; choose another number."
    )
    assert other.balance() == before
    assert other.get("/v1/numbers").json()["numbers"] == []
    assert [n["status"] for n in owner.get("/v1/numbers").json()["numbers"]] == ["active"]


def test_adding_ones_own_number_again_says_it_is_already_there(api: Any) -> None:
    t = tenant(api, number="+14155550100")  # $1 of the $2 free credit left
    before = t.balance()
    refused = t.post("/v1/numbers", {"e164": "+14155550100"})
    assert (refused.status_code, refused.json()["code"]) == (409, "number_in_use")
    assert refused.json()["detail"] == (
        f"+14155550100 is already this account's number {t.number_id}; nothing to add."
    )
    assert refused.json()["number_id"] == t.number_id
    assert t.balance() == before


def test_adding_ones_suspended_number_says_to_release_it_and_add_it_again(
    api: Any, db_url: str
) -> None:
    apikit.import_tiny_card(api)
    t = tenant(api, plan="trial", rate_card="tiny", credit="1.00")  # all of it on the number
    engine = make_engine(db_url)
    try:
        run_cycle(engine, datetime.now(UTC) + timedelta(days=32))  # next month's $1: none left
    finally:
        engine.dispose()
    assert [n["status"] for n in t.get("/v1/numbers").json()["numbers"]] == ["suspended"]
    apikit.grant(api, t.account_id, "5.00")
    before = t.balance()
    refused = t.post("/v1/numbers", {"e164": t.number})
    assert (refused.status_code, refused.json()["code"]) == (409, "number_in_use")
    assert refused.json()["detail"] == (
        f"{t.number} is already this account's number {t.number_id}, suspended (a monthly "
        "rental was not covered, or the subscription was canceled when a period began); "
        "release it and add it again to pay for it and use it."
    )
    assert t.balance() == before
    released = t.client.delete(f"/v1/numbers/{t.number_id}", headers=t.auth)
    assert released.status_code == 200, released.text
    again = t.post("/v1/numbers", {"e164": t.number})
    assert (again.status_code, again.json()["status"]) == (201, "active")


def test_a_number_spelled_with_its_trunk_prefix_cannot_rent_a_held_line_twice(api: Any) -> None:
    owner = tenant(api, credit="5.00", number="+447400123456")
    other = tenant(api, credit="5.00", number=None)
    before = other.balance()
    refused = other.post("/v1/numbers", {"e164": "+4407400123456"})
    # Before: 201, the line +447400123456 rented by a second account under another spelling.
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_number")
    assert "write it as +447400123456" in refused.json()["detail"]
    assert other.balance() == before
    assert other.get("/v1/numbers").json()["numbers"] == []
    assert len(owner.get("/v1/numbers").json()["numbers"]) == 1


def test_a_numbers_first_month_ledger_line_names_the_number_and_says_first_month(
    api: Any,
) -> None:
    # the API's line had neither, while the embedded rent_number's and the renewals' name the
    # number (a month-end audit)
    t = tenant(api, credit="5.00", number=None)
    added = t.post("/v1/numbers", {"e164": "+14155550100"})
    assert added.status_code == 201, added.text
    [answered] = added.json()["lines"]
    assert (answered["number"], answered["first_month"]) == ("+14155550100", True)
    [entry] = t.ledger(reference="number:+14155550100")
    [line] = entry["lines"]
    assert (line["kind"], line["number"], line["first_month"]) == (
        "number_rental",
        "+14155550100",
        True,
    )
    assert line == answered  # the ledger's line is the one answered
