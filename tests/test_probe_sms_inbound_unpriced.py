"""A rate card without inbound SMS rows does not price inbound messages: they are recorded free
("charged only if the account's card prices inbound SMS"), and the inbound quote agrees; a card
that prices inbound SMS still refuses a country it has no row for."""

from __future__ import annotations

from typing import Any

import pytest

from talktime.rating import load_card, price_sms, shipped_card_dir
from talktime.rating.errors import DestinationNotPricedError

from apikit import ADMIN, tenant


def _import_outbound_only_card(client: Any) -> None:
    source = shipped_card_dir("default")
    files = {n: (source / n).read_text() for n in ("sms.csv", "voice.csv", "numbers.csv")}
    files["card.toml"] = (
        (source / "card.toml")
        .read_text()
        .replace('name = "default"', 'name = "outonly"')
        .replace('inbound = "0"', 'inbound = "0.01"')  # a base fee alone prices nothing
    )
    rows = files["sms.csv"].splitlines()
    files["sms.csv"] = "\n".join(row for row in rows if not row.startswith("inbound")) + "\n"
    response = client.post("/v1/admin/rate-cards", json=files, headers=ADMIN)
    assert response.status_code == 201, response.text


def test_an_inbound_message_is_recorded_free_when_the_card_has_no_inbound_rates(
    api: Any,
) -> None:
    _import_outbound_only_card(api)
    t = tenant(api, rate_card="outonly")
    before = t.balance()
    response = t.post(
        "/v1/messages/inbound", {"from": "+14155550111", "to": t.number, "text": "hi 😀"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["amount"], body["lines"], body["segments"]) == ("0.0000", [], 1)
    assert (body["encoding"], body["status"]) == ("UCS-2", "received")
    assert t.balance() == before
    quote = api.post(
        "/v1/quotes/sms",
        json={
            "from": "+14155550111",
            "to": t.number,
            "text": "hi 😀",
            "direction": "inbound",
            "card": "outonly",
        },
    )
    assert quote.status_code == 200, quote.text
    assert (quote.json()["total"], quote.json()["lines"]) == ("0.0000", [])
    outbound = t.sms("+14155550111", "hi")
    assert (outbound.status_code, outbound.json()["amount"]) == (201, "0.0100")


def test_a_card_that_prices_inbound_sms_still_refuses_a_country_without_a_row() -> None:
    card = load_card("passthrough")
    with pytest.raises(DestinationNotPricedError):
        price_sms(card, "+8613800138000", "+14155550100", "hi", "inbound")
