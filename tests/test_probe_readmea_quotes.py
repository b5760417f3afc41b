"""README walkthrough (Calls: legs): "`"forward": null` and `"transfers": null` say none, as
leaving them out or `[]` does" for the call JSON of the CLI and the API; `POST
/v1/quotes/calls` refused `"transfers": null` with a 422."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings

CALL = {"direction": "inbound", "from": "+61412345678", "to": "+14155550123", "duration": 70}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}", rate_cards_dir=str(tmp_path / "cards")
    )
    return TestClient(create_app(settings))


def test_a_call_quote_with_null_forward_and_transfers_prices_the_call_alone(
    client: TestClient,
) -> None:
    bare = client.post("/v1/quotes/calls", json=CALL)
    nulls = client.post("/v1/quotes/calls", json={**CALL, "forward": None, "transfers": None})
    empty = client.post("/v1/quotes/calls", json={**CALL, "transfers": []})

    assert bare.status_code == 200, bare.text
    assert nulls.status_code == 200, nulls.text
    assert nulls.json() == bare.json() == empty.json()
    assert bare.json()["total"] == "0.0170"  # inbound, 2 min x $0.0085


@pytest.mark.parametrize("path", ["/v1/quotes/sms", "/v1/quotes/calls"])
def test_an_empty_card_name_on_a_quote_is_rate_card_not_found_as_in_the_cli(
    client: TestClient, path: str
) -> None:
    body = CALL if path.endswith("calls") else {"from": "+14155550123", "to": "+12015550123"}
    if path.endswith("sms"):
        body = {**body, "text": "Hello"}
    r = client.post(path, json={**body, "card": ""})
    assert (r.status_code, r.json()["code"]) == (404, "rate_card_not_found"), r.text
