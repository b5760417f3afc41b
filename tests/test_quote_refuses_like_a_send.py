"""An SMS quote refuses what every send refuses, whoever sends it: an empty, too long or
invisible-only text and a route between countries SMS never takes (it priced them before)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from talktime.api import create_app
from talktime.cli import app
from talktime.config import Settings, get_settings

US, US2, CA, GB = "+14155550100", "+14155550111", "+14165550123", "+447400123456"
IE, IE2, US_TOLL_FREE = "+353851234567", "+353861234567", "+18005550100"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", sms_max_text_chars=1600)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"from": US, "to": US2, "text": ""}, "invalid_request"),
        ({"from": US, "to": US2, "text": "a" * 1601}, "text_too_long"),
        ({"from": US, "to": US2, "text": "\u200b", "smart_encoding": True}, "invalid_request"),
        ({"from": US, "to": GB, "text": "hi"}, "sms_cross_country"),
        ({"from": GB, "to": US, "text": "hi", "direction": "inbound"}, "sms_cross_country"),
        # no account can have an SMS-enabled number in IE, nor a toll-free one
        ({"from": IE, "to": IE2, "text": "hi"}, "number_not_sms_enabled"),
        ({"from": US_TOLL_FREE, "to": US, "text": "hi"}, "number_not_sms_enabled"),
        ({"from": IE, "to": IE2, "text": "hi", "direction": "inbound"}, "number_not_sms_enabled"),
    ],
)
def test_an_sms_quote_refuses_what_every_send_refuses(
    client: TestClient, body: dict[str, object], code: str
) -> None:
    response = client.post("/v1/quotes/sms", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


def test_an_sms_quote_between_the_us_and_canada_or_at_the_limit_is_priced(
    client: TestClient,
) -> None:
    for body in (
        {"from": US, "to": CA, "text": "hi"},
        {"from": CA, "to": US, "text": "hi", "direction": "inbound"},
        {"from": US, "to": US2, "text": "a" * 1600},
    ):
        response = client.post("/v1/quotes/sms", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["total"]


def test_the_cli_sms_quote_refuses_like_a_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        crossed = runner.invoke(app, ["quote", "sms", "hi", "--from", US, "--to", GB])
        empty = runner.invoke(app, ["quote", "sms", "", "--from", US, "--to", US2])
        fine = runner.invoke(app, ["quote", "sms", "hi", "--from", US, "--to", CA])
        irish = runner.invoke(app, ["quote", "sms", "hi", "--from", IE, "--to", IE2])
    finally:
        get_settings.cache_clear()
    assert crossed.exit_code == 1
    assert "error[sms_cross_country]" in crossed.output
    assert empty.exit_code == 1
    assert "error[invalid_request]" in empty.output
    assert fine.exit_code == 0, fine.output
    assert irish.exit_code == 1
    assert "error[number_not_sms_enabled]" in irish.output
