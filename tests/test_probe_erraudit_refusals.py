"""Refusals whose sentence was false or unhelpful, or that wrote to the database."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from talktime.numbers import InvalidNumberError, classify

import apikit


def _snapshot(client: Any) -> dict[str, list[str]]:
    """Every row of every table, as text: to check a refusal changed nothing."""
    engine: sa.Engine = client.app.state.engine
    with engine.connect() as conn:
        return {
            name: sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
            for name, table in _tables(engine).items()
        }


def _tables(engine: sa.Engine) -> dict[str, sa.Table]:
    meta = sa.MetaData()
    meta.reflect(engine)
    return dict(meta.tables)


def test_an_unknown_country_code_is_refused_saying_so() -> None:
    with pytest.raises(InvalidNumberError) as caught:
        classify("+999123456789")
    detail = caught.value.detail
    assert "country code" in detail, detail
    assert "(0)" not in detail, detail
    assert "plus-sign" not in detail, detail


def test_an_unknown_country_code_reads_the_same_over_http(api: Any) -> None:
    t = apikit.tenant(api)
    response = t.post("/v1/numbers", {"e164": "+999123456789"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_number"
    assert "does not begin with a country code in use" in body["detail"]


def test_a_sub_cent_purchase_names_the_amount_and_writes_nothing(paying: Any) -> None:
    t = apikit.tenant(paying)
    before = _snapshot(paying)
    response = t.post("/v1/credits", {"amount": "0.001"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "payment_setup_invalid"
    assert body["field"] == "amount"
    assert "0.0010 USD is not a whole number of cents" in body["detail"]
    assert _snapshot(paying) == before
    assert t.post("/v1/credits", {"amount": "1.00"}).status_code == 201


def test_a_purchase_with_the_manual_provider_writes_nothing(api: Any) -> None:
    t = apikit.tenant(api)
    before = _snapshot(api)
    response = t.post("/v1/credits", {"amount": "10.00"})
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "automatic_payment_unavailable"
    assert _snapshot(api) == before


def test_an_inbound_mms_is_told_to_be_recorded_without_its_media(api: Any) -> None:
    t = apikit.tenant(api)
    body = {
        "from": "+14155550111",
        "to": t.number,
        "text": "hi",
        "media": ["https://a.example/x.png"],
    }
    response = t.post("/v1/messages/inbound", body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "mms_not_supported"
    assert "record the received message without its media" in problem["detail"]
    assert "send" not in problem["detail"]
