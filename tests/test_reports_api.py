"""GET /v1/usage and GET /v1/statements/{YYYY-MM} through the app after real traffic: groups,
CSV, and the statement in JSON, CSV and PDF agreeing with the balance; own account only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from talktime import money

from apikit import tenant


def _month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def test_usage_groups_messages_and_rentals_and_exports_csv(api: Any) -> None:
    t = tenant(api, credit="5.00")
    for to in ["+14155550111", "+14155550112", "+14165550113"]:
        assert t.sms(to).status_code == 201
    other = tenant(api, number="+14155550199")
    assert other.sms("+14155550111").status_code == 201
    by_channel = t.get("/v1/usage", group_by="channel")
    assert by_channel.status_code == 200, by_channel.text
    rows = {r["channel"]: r for r in by_channel.json()["rows"]}
    assert rows["sms"]["count"] == 3
    assert rows["sms"]["quantity"] == 3
    assert rows["sms"]["amount"] == "0.0300"
    assert rows["number"]["count"] == 1
    assert rows["number"]["amount"] == "1.0000"
    by_country = t.client.get(
        "/v1/usage",
        params=[("group_by", "channel"), ("group_by", "country")],
        headers={**t.auth, "Accept": "text/csv"},
    )
    assert by_country.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(by_country.text)))
    sms = {r["country"]: r for r in table if r["channel"] == "sms"}
    assert (sms["US"]["count"], sms["CA"]["count"]) == ("2", "1")
    everything = t.get("/v1/usage", group_by="day,direction,number_type,user,phone_number")
    assert everything.status_code == 200, everything.text
    assert {r["phone_number"] for r in everything.json()["rows"]} == {t.number}
    bad = t.get("/v1/usage", group_by="planet")
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_usage_query"


def test_the_statement_adds_up_to_the_balance_in_json_csv_and_pdf(api: Any) -> None:
    t = tenant(api, credit="5.00")
    for n in range(3):
        assert t.sms("+14155550111", f"message {n}").status_code == 201
    balance = t.balance()
    response = t.get(f"/v1/statements/{_month()}")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["closing"]["free"] == balance["free"]
    assert doc["closing"]["paid"] == balance["paid"]
    assert doc["opening"]["total"] == "0.0000"
    moved = sum(money.parse(line["total"], allow_negative=True) for line in doc["lines"])
    assert moved == money.parse(doc["closing"]["total"])
    labels = {line["label"] for line in doc["lines"]}
    assert {"SMS", "Phone numbers", "Purchased credit"} <= labels
    as_csv = t.client.get(f"/v1/statements/{_month()}", headers={**t.auth, "Accept": "text/csv"})
    assert as_csv.text.splitlines()[0] == "section,label,free,paid,total,entries"
    as_pdf = t.client.get(
        f"/v1/statements/{_month()}", headers={**t.auth, "Accept": "application/pdf"}
    )
    assert as_pdf.headers["content-type"] == "application/pdf"
    assert as_pdf.content.startswith(b"%PDF-")
    assert t.get("/v1/statements/2026-13").status_code == 422
    assert api.get(f"/v1/statements/{_month()}").status_code == 401


def test_reports_follow_the_accept_headers_preferences_and_vary_on_it(api: Any) -> None:
    """A substring test of Accept sent CSV for `text/csv;q=0` and for CSV that was only the
    second choice; each answer now takes the type Accept prefers and says it varies by it."""
    t = tenant(api, credit="5.00")
    cases = {
        "": "application/json",
        "*/*": "application/json",
        "text/csv": "text/csv",
        "text/*": "text/csv",
        "application/json, text/csv;q=0": "application/json",
        "text/csv;q=0.5, application/json": "application/json",
        "application/json;q=0.2, text/csv;q=0.9": "text/csv",
        "text/html,application/xhtml+xml,*/*;q=0.8": "application/json",
        "text/csv;q=bad": "application/json",
    }
    for accept, expected in cases.items():
        headers = {**t.auth, **({"accept": accept} if accept else {})}
        usage = api.get("/v1/usage", headers=headers)
        assert usage.status_code == 200, (accept, usage.text)
        assert usage.headers["content-type"].startswith(expected), accept
        assert usage.headers["vary"] == "Accept"
    period = datetime.now(UTC).strftime("%Y-%m")
    for accept, expected in {
        "application/pdf;q=0.1": "application/pdf",
        "application/pdf;q=0.5, text/csv": "text/csv",
        "application/json, application/pdf;q=0": "application/json",
    }.items():
        stmt = api.get(f"/v1/statements/{period}", headers={**t.auth, "accept": accept})
        assert stmt.status_code == 200, (accept, stmt.text)
        assert stmt.headers["content-type"].startswith(expected), accept
        assert stmt.headers["vary"] == "Accept"
