"""The second seed page's call rules driven through the HTTP API and checked to the micro-unit:
per-minute rounding per leg (to the minute, not the cent), forwarded and transferred calls,
external caller IDs, the seed's rate table both ways and its monthly number prices; every
answer's lines are what the ledger charged and what a quote says. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from talktime import money
from talktime.wallet import Wallet

from apikit import Tenant, tenant
from ops_helpers import lapse_pending_holds

US, CA = "+14155550100", "+16135550123"
GB_LOCAL, GB_MOBILE = "+442079460000", "+447400123456"
DE_MOBILE = "+4915123456789"
AU_LOCAL, AU_MOBILE = "+61212345678", "+61412345678"

# The seed's table: number -> (monthly, outbound per minute (domestic), inbound per minute)
SEED = {
    US: ("1", "0.013", "0.0085"),
    CA: ("1", "0.013", "0.0085"),
    GB_LOCAL: ("1", "0.015", "0.01"),
    GB_MOBILE: ("1", "0.029", "0.01"),
    DE_MOBILE: ("5", "0.055", "0.01"),
    AU_LOCAL: ("2.50", "0.024", "0.01"),
    AU_MOBILE: ("6", "0.075", "0.01"),
}
# A domestic destination of the same country and type as each number, to call from it.
DOMESTIC = {
    US: "+12015550123",
    CA: "+16475550123",
    GB_LOCAL: "+442079460001",
    GB_MOBILE: "+447400123457",
    DE_MOBILE: "+4915123456780",
    AU_LOCAL: "+61298765432",
    AU_MOBILE: "+61412345679",
}


def leg(per_minute: str, seconds: int) -> int:
    """What the seed charges for one leg: whole started minutes at the rate ("rounded up to the
    nearest minute"; only SMS is rounded to the cent)."""
    minutes = -(-seconds // 60)
    return money.parse(per_minute) * minutes


def _call(t: Tenant, direction: str, from_: str, to: str, what: dict[str, Any]) -> dict[str, Any]:
    """Authorize and complete one call; check its answer against the ledger, GET and a quote."""
    body = {"direction": direction, "from": from_, "to": to, "user": t.user}
    held = t.post("/v1/calls", body)
    assert held.status_code == 201, held.text
    call_id = held.json()["id"]
    done = t.post(f"/v1/calls/{call_id}/complete", what)
    assert done.status_code == 200, done.text
    answer: dict[str, Any] = done.json()
    _check(t, answer, {"direction": direction, "from": from_, "to": to, **what})
    return answer


def _check(t: Tenant, answer: dict[str, Any], description: dict[str, Any]) -> None:
    """The answer's lines add up to its amount; the ledger charged exactly that with exactly
    those lines; GET shows the same; a quote of the same call gives the same lines and total."""
    amount = money.parse(answer["amount"])
    assert sum(money.parse(line["amount"]) for line in answer["lines"]) == amount
    entries = t.ledger(reference=answer["id"])
    charged = [e for e in entries if e["kind"] in ("usage", "uncollected")]
    assert -sum(money.parse(e["amount"].lstrip("-")) for e in charged) == -amount
    assert all(e["lines"] == answer["lines"] for e in charged)
    uncollected = sum(money.parse(e["amount"][1:]) for e in charged if e["kind"] == "uncollected")
    assert money.parse(answer["uncollected"]) == uncollected
    shown = t.get(f"/v1/calls/{answer['id']}").json()
    assert {**shown, "balance": None} == {**answer, "balance": None}
    quote = t.client.post("/v1/quotes/calls", json=description)
    assert quote.status_code == 200, quote.text
    assert quote.json()["total"] == answer["amount"]
    assert quote.json()["lines"] == answer["lines"]


def test_the_seed_numbers_rent_at_the_seeds_monthly_prices(api: Any) -> None:
    t = tenant(api, plan="business", credit="50.00", number=None)
    for number, (monthly, _, _) in SEED.items():
        rented = t.post("/v1/numbers", {"e164": number})
        assert rented.status_code == 201, rented.text
        assert money.parse(rented.json()["charged"]) == money.parse(monthly), number
    assert t.balance()["available"] == "42.5000"  # $60 - $17.50 of numbers


@pytest.mark.parametrize("seconds", [0, 60, 61, 70])  # the seed: 70 s bills 2 minutes
def test_every_seed_rate_bills_started_minutes_per_leg_both_ways(api: Any, seconds: int) -> None:
    t = tenant(api, plan="business", credit="50.00", number=None)
    for number in SEED:
        assert t.post("/v1/numbers", {"e164": number}).status_code == 201
    for number, (_, out, inbound) in SEED.items():
        called = _call(t, "outbound", number, DOMESTIC[number], {"duration": seconds})
        assert money.parse(called["amount"]) == leg(out, seconds), (number, "outbound")
        answered = _call(t, "inbound", "+14155550999", number, {"duration": seconds})
        assert money.parse(answered["amount"]) == leg(inbound, seconds), (number, "inbound")
        assert called["lines"][0]["quantity"] == str(-(-seconds // 60))


def test_a_70_second_call_is_a_2_minute_call(api: Any) -> None:
    t = tenant(api, plan="business")
    call = _call(t, "outbound", US, "+12015550123", {"duration": 70})
    assert (call["lines"][0]["quantity"], call["lines"][0]["unrounded"]) == ("2", "0.0260")
    assert call["amount"] == "0.0260"  # "charged as a 2-minute call": 2 x $0.013


def test_a_forwarded_call_is_two_calls_each_rounded_on_its_own(api: Any) -> None:
    t = tenant(api, plan="business", number=AU_MOBILE)
    what = {"duration": 61, "forward": {"to": "+14155550122", "duration": 121}}
    call = _call(t, "inbound", "+61298765432", AU_MOBILE, what)
    # inbound on AU mobile 2 min x $0.01; outbound AU -> US 3 min x $0.030 (plausible row)
    assert [line["amount"] for line in call["lines"]] == ["0.0200", "0.0900"]
    assert "from +61412345678 to +14155550122" in call["lines"][1]["description"]
    assert call["amount"] == "0.1100"


def test_each_transfer_to_a_user_adds_an_outbound_and_an_answered_call(api: Any) -> None:
    t = tenant(api, plan="business")
    transfer = {"kind": "user", "to": "+14155550133"}
    what = {
        "duration": 70,
        "transfers": [
            {**transfer, "outbound_duration": 10, "inbound_duration": 50},
            {**transfer, "outbound_duration": 61, "inbound_duration": 121},
        ],
    }
    call = _call(t, "outbound", US, "+12015550123", what)
    expected = [
        leg("0.013", 70),  # the original call
        leg("0.013", 10),  # transfer 1: outbound by the transferring user
        leg("0.0085", 50),  # transfer 1: answered by the other user
        leg("0.013", 61),
        leg("0.0085", 121),
    ]
    assert [money.parse(line["amount"]) for line in call["lines"]] == expected
    assert money.parse(call["amount"]) == sum(expected) == 99_000  # $0.099


def test_a_transfer_to_an_external_number_is_only_two_calls(api: Any) -> None:
    t = tenant(api, plan="business")
    what = {
        "duration": 30,
        "transfers": [{"kind": "external", "to": AU_MOBILE, "outbound_duration": 90}],
    }
    call = _call(t, "outbound", US, "+12015550123", what)
    assert len(call["lines"]) == 2
    # the transfer leg from the US business number to an AU mobile: 2 min x $0.053 = $0.106
    assert [line["amount"] for line in call["lines"]] == ["0.0130", "0.1060"]


def test_an_external_us_caller_id_calling_australia_pays_the_us_to_au_rate(api: Any) -> None:
    t = tenant(api, plan="business", number=AU_LOCAL)
    # the account's own number is Australian; the caller ID set on the call is a US number
    call = _call(t, "outbound", "+12015550177", AU_MOBILE, {"duration": 60})
    assert call["lines"][0]["unit_price"] == "0.0530"  # not AU's domestic $0.075
    assert call["amount"] == "0.0530"
    mine = _call(t, "outbound", AU_LOCAL, AU_MOBILE, {"duration": 60})
    assert mine["amount"] == "0.0750"  # AU -> AU mobile, the seed's $0.075


def test_zero_second_legs_cost_nothing_and_still_show_as_lines(api: Any) -> None:
    t = tenant(api, plan="business")
    what = {
        "duration": 0,
        "forward": {"to": "+14155550122", "duration": 0},
        "transfers": [{"kind": "user", "to": "+14155550133", "outbound_duration": 0}],
    }
    call = _call(t, "inbound", "+12015550123", US, what)
    assert [line["amount"] for line in call["lines"]] == ["0.0000"] * 4
    assert [line["quantity"] for line in call["lines"]] == ["0"] * 4
    assert (call["amount"], call["uncollected"]) == ("0.0000", "0.0000")


def test_legs_past_the_hold_are_charged_from_credit_then_uncollected(
    api: Any, wallet: Wallet
) -> None:
    t = tenant(api, plan="business", credit="0.10")  # $9 free + $0.10 paid after the number
    spend = t.post(
        "/v1/calls", {"direction": "outbound", "from": US, "to": AU_MOBILE, "user": t.user}
    )
    assert spend.status_code == 201, spend.text
    assert spend.json()["held"] == "0.2650"  # 5 min x $0.053
    t.post(f"/v1/calls/{spend.json()['id']}/complete", {"duration": 60 * 169})  # $8.957
    assert t.balance()["available"] == "0.1430"
    what = {"duration": 120, "forward": {"to": AU_MOBILE, "duration": 300}}
    call = _call(t, "inbound", "+12015550123", US, what)
    # inbound 2 min x $0.0085 = $0.017; forwarded 5 min x $0.053 = $0.265: $0.282 for $0.143
    assert (call["amount"], call["uncollected"]) == ("0.2820", "0.1390")
    assert t.balance()["available"] == "0.0000"
    assert wallet.verify() == []


def test_a_call_completed_after_its_hold_expired_is_billed_in_full(
    api: Any, wallet: Wallet
) -> None:
    t = tenant(api, plan="business")
    body = {"direction": "outbound", "from": US, "to": GB_MOBILE, "user": t.user}
    held = t.post("/v1/calls", body).json()
    assert held["held"] == "0.1750"  # 5 min x $0.035 (US -> GB mobile)
    assert lapse_pending_holds(wallet) == 1
    assert t.balance()["held"] == "0.0000"
    done = t.post(f"/v1/calls/{held['id']}/complete", {"duration": 3601})
    assert done.status_code == 200, done.text
    # 61 minutes x $0.035 = $2.135, from the credit the released hold gave back
    assert (done.json()["amount"], done.json()["uncollected"]) == ("2.1350", "0.0000")
    _check(t, done.json(), {"direction": "outbound", "from": US, "to": GB_MOBILE, "duration": 3601})
    assert t.balance()["available"] == "6.8650"
    assert wallet.verify() == []
