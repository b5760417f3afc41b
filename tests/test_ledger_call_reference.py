"""`GET /v1/ledger?reference=<call id>` lists the call's holds and their releases with its usage:
hold entries carry their hold's id, and show (and are found by) that hold's reference, the call
id. Before, they showed `reference: null` and a call's filter missed them."""

from __future__ import annotations

from typing import Any

from apikit import tenant


def test_a_calls_reference_finds_its_holds_releases_and_usage(api: Any) -> None:
    t = tenant(api, credit="1.00")
    call = t.authorize().json()
    assert t.post(f"/v1/calls/{call['id']}/extend", {}).status_code == 200
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": 70})
    assert done.status_code == 200, done.text
    page = t.get("/v1/ledger", reference=call["id"]).json()
    kinds = sorted(e["kind"] for e in page["entries"])
    assert kinds == ["hold", "hold", "hold_release", "usage"]
    assert {e["reference"] for e in page["entries"]} == {call["id"]}
    assert sum(int(e["amount"].replace(".", "")) for e in page["entries"]) == -260  # $0.026
    everything = t.get("/v1/ledger").json()["entries"]
    holds = [e for e in everything if e["kind"] in ("hold", "hold_release")]
    assert {e["reference"] for e in holds} == {call["id"]}
    other = t.get("/v1/ledger", reference="call_nope").json()
    assert other["entries"] == []
