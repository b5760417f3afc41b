"""Call quotes refuse a caller that is not an E.164 number, as `POST /v1/calls` does and as
the quote refuses every other number of the call (HTTP, CLI and the rating library)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.cli.app import app as cli_app
from talktime.config import Settings
from talktime.numbers import InvalidNumberError
from talktime.rating import Call

CALL = {"direction": "inbound", "to": "+14155550100", "duration": 70}


@pytest.fixture
def quotes(tmp_path: Path) -> TestClient:
    """The app: quotes read no database."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.mark.parametrize("caller", ["garbage", "14155550111", "+0123", ""])
def test_an_inbound_call_quote_with_a_caller_that_is_not_e164_is_refused(
    quotes: TestClient, caller: str
) -> None:
    response = quotes.post("/v1/quotes/calls", json={**CALL, "from": caller})
    # Before: 200 with a price, for a call `POST /v1/calls` refuses; then `invalid_number`
    # naming no field. Now the E.164 type's 422, as `POST /v1/calls` answers.
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert response.json()["field"] == "from"
    assert "E.164" in response.json()["detail"]


def test_an_inbound_call_quote_from_any_e164_caller_is_priced(quotes: TestClient) -> None:
    response = quotes.post("/v1/quotes/calls", json={**CALL, "from": "+33123456789"})
    assert (response.status_code, response.json()["total"]) == (200, "0.0170")  # 2 min x $0.0085


def test_the_library_refuses_an_inbound_call_from_a_caller_that_is_not_e164() -> None:
    with pytest.raises(InvalidNumberError):
        Call("inbound", "garbage", "+14155550100", 70)


def test_the_cli_refuses_an_inbound_call_quote_from_a_caller_that_is_not_e164(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from talktime.config import get_settings

    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", str(tmp_path / "cards"))
    get_settings.cache_clear()
    try:
        result: Any = CliRunner().invoke(
            cli_app, ["quote", "call"], input=json.dumps({**CALL, "from": "garbage"})
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "error[invalid_number]" in result.output
