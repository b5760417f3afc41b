"""An inbound quote is what recording the message charges: smart encoding (which rewrites an
outgoing text) cannot apply to a received one, so an inbound quote asking for it is refused
(it priced "It’s" x 40 at 1 GSM-7 segment, while the message is recorded at 3 UCS-2 ones)."""

from __future__ import annotations

from typing import Any

import pytest

from talktime.rating import load_card, price_sms
from talktime.rating.errors import InvalidUsageError

from apikit import tenant

TEXT = "It’s" * 40  # UCS-2: 3 segments; with smart encoding GSM-7: 1


def test_the_pure_inbound_quote_refuses_smart_encoding() -> None:
    card = load_card("passthrough")
    with pytest.raises(InvalidUsageError) as info:
        price_sms(card, "+14155550111", "+14155550100", TEXT, "inbound", smart_encoding=True)
    assert "outgoing" in info.value.detail
    outbound = price_sms(card, "+14155550100", "+14155550111", TEXT, smart_encoding=True)
    assert outbound.total == 10_000  # 1 segment x $0.0083, rounded up to the cent


def test_an_inbound_quote_matches_what_recording_the_message_charges(api: Any) -> None:
    t = tenant(api, rate_card="passthrough")
    body = {"from": "+14155550111", "to": t.number, "text": TEXT}
    recorded = t.post("/v1/messages/inbound", body)
    assert (recorded.status_code, recorded.json()["amount"]) == (201, "0.0300")
    quote = {**body, "direction": "inbound", "card": "passthrough"}
    assert api.post("/v1/quotes/sms", json=quote).json()["total"] == "0.0300"
    refused = api.post("/v1/quotes/sms", json={**quote, "smart_encoding": True})
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_usage")
    assert api.post("/v1/quotes/sms", json={**quote, "smart_encoding": False}).status_code == 200
