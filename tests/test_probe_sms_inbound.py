"""POST /v1/messages/inbound refusals: sentences about receiving (not sending), and the seed's
country rule (no SMS between countries except US <-> CA) in both directions; both backends."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from talktime.store import make_engine
from talktime.store.recharge_tables import phone_numbers

from apikit import Tenant, tenant


def _inbound(t: Tenant, sender: str, text: str = "hi", to: str | None = None) -> Any:
    return t.post("/v1/messages/inbound", {"from": sender, "to": to or t.number, "text": text})


def test_an_inbound_message_to_a_number_of_another_account_is_refused_with_a_receiving_sentence(
    api: Any,
) -> None:
    t = tenant(api)
    response = _inbound(t, "+14155550111", to="+14155550199")
    assert (response.status_code, response.json()["code"]) == (422, "number_not_sms_enabled")
    detail = response.json()["detail"]
    assert "send from" not in detail
    assert "received" in detail


def test_an_inbound_message_to_a_suspended_number_is_refused_with_a_receiving_sentence(
    api: Any, db_url: str
) -> None:
    t = tenant(api)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.update(phone_numbers).values(status="suspended"))
    engine.dispose()
    response = _inbound(t, "+14155550111")
    assert (response.status_code, response.json()["code"]) == (422, "number_not_sms_enabled")
    detail = response.json()["detail"]
    assert "suspended" in detail
    assert "send from" not in detail
    assert "received" in detail


def test_an_inbound_message_to_a_released_number_is_refused_with_a_receiving_sentence(
    api: Any,
) -> None:
    t = tenant(api)
    assert api.delete(f"/v1/numbers/{t.number_id}", headers=t.auth).status_code == 200
    response = _inbound(t, "+14155550111")
    assert (response.status_code, response.json()["code"]) == (422, "number_not_sms_enabled")
    assert "send from" not in response.json()["detail"]


def test_an_outbound_refusal_keeps_its_sending_sentence(api: Any) -> None:
    t = tenant(api)
    response = t.post(
        "/v1/messages",
        {"from": "+14155550199", "to": "+14155550111", "text": "hi", "user": t.user},
    )
    assert response.json()["code"] == "number_not_sms_enabled"
    assert "send from one of your SMS-enabled numbers" in response.json()["detail"]


def test_an_inbound_message_from_another_country_is_refused_and_charges_nothing(
    api: Any,
) -> None:
    t = tenant(api, rate_card="passthrough")  # prices inbound GB messages
    before = t.balance()
    response = _inbound(t, "+447400123457")
    assert (response.status_code, response.json()["code"]) == (422, "sms_cross_country")
    problem = response.json()
    assert (problem["from_country"], problem["to_country"]) == ("GB", "US")
    assert "received" in problem["detail"]
    assert t.balance() == before
    unpriced = _inbound(t, "+8613800138000")  # no rate either: the country rule answers
    assert unpriced.json()["code"] == "sms_cross_country"


def test_an_inbound_message_between_the_us_and_canada_is_recorded(api: Any) -> None:
    t = tenant(api, rate_card="passthrough")
    response = _inbound(t, "+16135550123")
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == "0.0100"


def test_an_inbound_message_on_a_british_number_from_britain_is_recorded(api: Any) -> None:
    t = tenant(api, rate_card="passthrough", credit="5", number="+447400123456")
    response = _inbound(t, "+447400123457")
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == "0.0100"  # $0.0075 rounded up to the cent
