"""The Segment Calculator prices what the API would: its estimate refuses what a quote refuses
(an empty text, a smart-encoded text of only invisible characters, a lone surrogate as
`invalid_text` with its position) instead of pricing a message no send takes, and its text box
admits every text the API accepts (browsers count `maxlength` in UTF-16 units, the API's limit
is in characters: a `maxlength` of 1,600 cut 1,000 emoji to 800 and showed 24 segments for a
message charged 30)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings

US, US2 = "+12015550123", "+12015550124"
LIMIT = 1600


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 't.db'}",
        sms_max_text_chars=LIMIT,
        rate_cards_dir=str(tmp_path / "cards"),
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _raw(client: TestClient, path: str, body: str) -> dict[str, object]:
    response = client.post(
        path, content=body.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    data: dict[str, object] = response.json()
    return data


def test_the_estimate_refuses_a_lone_surrogate_as_invalid_text_with_its_position_like_a_quote(
    client: TestClient,
) -> None:
    estimate = _raw(client, "/calculator/estimate", '{"text": "ok \\ud83d", "country": "US"}')
    quote = _raw(
        client, "/v1/quotes/sms", f'{{"from": "{US}", "to": "{US2}", "text": "ok \\ud83d"}}'
    )
    assert (estimate["code"], estimate["position"]) == ("invalid_text", 3)
    assert estimate["detail"] == quote["detail"]


@pytest.mark.parametrize(
    ("text", "smart"),
    [("", False), ("", True), ("\u200b\u00ad", True), ("\ufeff", True)],
)
def test_the_estimate_refuses_a_text_no_send_takes_as_the_quote_does(
    client: TestClient, text: str, smart: bool
) -> None:
    estimate = client.post(
        "/calculator/estimate", json={"text": text, "smart_encoding": smart, "country": "US"}
    )
    quote = client.post(
        "/v1/quotes/sms", json={"from": US, "to": US2, "text": text, "smart_encoding": smart}
    )
    assert quote.status_code == 422, quote.text
    assert estimate.status_code == 422, estimate.text
    assert estimate.json()["code"] == quote.json()["code"] == "invalid_request"
    assert estimate.json()["detail"] == quote.json()["detail"]


def test_the_estimate_still_prices_invisible_characters_sent_without_smart_encoding(
    client: TestClient,
) -> None:
    estimate = client.post("/calculator/estimate", json={"text": "\u200b", "country": "US"})
    assert estimate.status_code == 200, estimate.text
    assert (estimate.json()["segments"], estimate.json()["total"]) == (1, "0.0100")


def test_the_estimate_refuses_a_text_over_the_limit_with_the_quotes_sentence(
    client: TestClient,
) -> None:
    text = "😀" * (LIMIT + 1)
    estimate = client.post("/calculator/estimate", json={"text": text, "country": "US"})
    quote = client.post("/v1/quotes/sms", json={"from": US, "to": US2, "text": text})
    assert estimate.status_code == quote.status_code == 422
    assert estimate.json()["code"] == quote.json()["code"] == "text_too_long"
    assert estimate.json()["detail"] == quote.json()["detail"]


def test_the_calculator_text_box_admits_the_longest_text_the_api_sends(
    client: TestClient,
) -> None:
    html = client.get("/calculator").text
    box = re.search(r"<textarea[^>]*>", html)
    assert box is not None
    bound = re.search(r'maxlength="(\d+)"', box.group())
    longest = "😀" * LIMIT  # the API takes it: 1,600 characters, 3,200 UTF-16 units
    sent = client.post("/v1/quotes/sms", json={"from": US, "to": US2, "text": longest})
    assert sent.status_code == 200, sent.text
    # a browser counts maxlength in UTF-16 code units and cuts a longer paste
    assert bound is None or len(longest.encode("utf-16-le")) // 2 <= int(bound.group(1))
    estimate = client.post("/calculator/estimate", json={"text": longest, "country": "US"})
    assert estimate.json()["total"] == sent.json()["total"] == "0.4900"  # 33 emoji a part
