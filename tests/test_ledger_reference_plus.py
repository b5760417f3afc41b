"""`GET /v1/ledger?reference=number:+14155550100`, written unencoded, finds the number's
rental: a `+` in `reference` is a plus sign (talktime's references never hold a space), where
form decoding read it as a space and the page came back empty."""

from __future__ import annotations

from typing import Any

from apikit import tenant

NUMBER = "+14155550100"


def test_a_reference_with_an_unencoded_plus_finds_the_numbers_rental(api: Any) -> None:
    t = tenant(api, credit="10.00", number=NUMBER)
    for query in (f"number:{NUMBER}", "number:%2B14155550100", "number%3A%2B14155550100"):
        page = api.get(f"/v1/ledger?reference={query}", headers=t.auth)
        assert page.status_code == 200, page.text
        [entry] = page.json()["entries"]
        assert (entry["kind"], entry["reference"]) == ("usage", f"number:{NUMBER}")
    # a space is %20, and matches nothing
    spaced = api.get("/v1/ledger?reference=number:%2014155550100", headers=t.auth)
    assert spaced.json()["entries"] == [], spaced.text
