"""One message, every interface: `talktime.sms.segment`, `price_sms`, `POST /v1/sms/segments`,
`POST /v1/quotes/sms`, the calculator's estimate, `talktime segments` / `talktime quote sms`
and the send (`POST /v1/messages`) report the same encoding, segments and price for tricky texts
at part boundaries (escape pairs, surrogate pairs, ZWJ clusters, CR LF, smart encoding), and the
send charges the wallet exactly the quoted amount; both backends."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime import sms
from talktime.cli import app
from talktime.config import get_settings
from talktime.rating import load_card, price_sms

import apikit

TO = "+12015550123"
CASES: list[tuple[str, str, bool, str, int]] = [
    # name, text, smart encoding, encoding, segments
    ("160 septets", "a" * 160, False, "GSM-7", 1),
    ("161 septets", "a" * 161, False, "GSM-7", 2),
    ("euro at the end of part one", "a" * 152 + "€" + "b" * 10, False, "GSM-7", 2),
    ("escape pair filling 160", "a" * 158 + "|", False, "GSM-7", 1),
    ("escape pair making 161", "a" * 159 + "^", False, "GSM-7", 2),
    ("three full parts", "a" * 459, False, "GSM-7", 3),
    ("CR LF across the cut", "a" * 152 + "\r\n" + "b" * 10, False, "GSM-7", 2),
    ("70 UCS-2 units", "ú" * 70, False, "UCS-2", 1),
    ("71 UCS-2 units", "ú" * 71, False, "UCS-2", 2),
    ("emoji across the cut", "ú" * 66 + "😀" + "ú" * 10, False, "UCS-2", 2),
    ("ZWJ cluster across the cut", "a" * 64 + "👩\u200d🦰" + "b" * 65, False, "UCS-2", 3),
    ("raw escape character", "\x1b", False, "UCS-2", 1),
    ("smart quotes made GSM-7", "It’s “done” — ok " * 12, True, "GSM-7", 2),
    ("ellipsis left UCS-2", "…" * 200, True, "UCS-2", 3),
]


@pytest.mark.parametrize(
    ("text", "smart", "encoding", "segments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_every_interface_counts_prices_and_charges_one_message_alike(
    api: Any,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    text: str,
    smart: bool,
    encoding: str,
    segments: int,
) -> None:
    price = f"{Decimal('0.01') * segments:.4f}"  # default card: $0.01 a segment to the US
    embedded = sms.segment(text, smart_encoding=smart)
    assert (embedded.encoding, embedded.segments) == (encoding, segments)
    t = apikit.tenant(api, credit="10")
    quote_micros = price_sms(load_card("default"), t.number, TO, text, smart_encoding=smart).total
    assert Decimal(quote_micros) / 1_000_000 == Decimal(price)

    counted = api.post("/v1/sms/segments", json={"text": text, "smart_encoding": smart}).json()
    assert (counted["encoding"], counted["segments"]) == (encoding, segments)
    body = {"from": t.number, "to": TO, "text": text, "smart_encoding": smart}
    quote = api.post("/v1/quotes/sms", json=body).json()
    assert (quote["total"], quote["lines"][0]["quantity"]) == (price, str(segments))
    estimate = api.post(
        "/calculator/estimate", json={"text": text, "smart_encoding": smart, "country": "US"}
    ).json()
    assert (estimate["segments"], estimate["total"]) == (segments, price)

    monkeypatch.setenv("TALKTIME_DATABASE_URL", db_url)
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        flag = ["--smart"] if smart else []
        out = runner.invoke(app, ["segments", "--json", *flag, "--", text])
        assert out.exit_code == 0, out.output
        assert (json.loads(out.stdout)["encoding"], json.loads(out.stdout)["segments"]) == (
            encoding,
            segments,
        )
        flag = ["--smart-encoding"] if smart else []
        args = ["quote", "sms", "--from", t.number or "", "--to", TO, "--json", *flag, "--", text]
        out = runner.invoke(app, args)
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["total"] == price
    finally:
        get_settings.cache_clear()

    before = Decimal(t.balance()["available"])
    sent = t.sms(TO, text, smart_encoding=smart)
    assert sent.status_code == 201, sent.text
    data = sent.json()
    assert (data["encoding"], data["segments"], data["amount"]) == (encoding, segments, price)
    assert [line["amount"] for line in data["lines"]] == [quote["lines"][0]["amount"]]
    assert before - Decimal(t.balance()["available"]) == Decimal(price)
