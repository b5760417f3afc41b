"""Refusals become RFC 9457 problem documents with a stable code."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import BaseModel

from talktime.api import create_app
from talktime.config import Settings
from talktime.errors import TalktimeError


class _NotCoveredError(TalktimeError):
    code = "insufficient_credit"
    status = 402
    title = "Insufficient credit"


class _Body(BaseModel):
    amount: int


def _client(tmp_path: Path) -> TestClient:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))

    @app.post("/refuse")
    def refuse(_body: _Body) -> None:
        raise _NotCoveredError("Add credit to send this message.", needed="0.0200")

    return TestClient(app)


def test_a_refusal_is_a_problem_document_with_code_status_and_sentence(tmp_path: Path) -> None:
    response = _client(tmp_path).post("/refuse", json={"amount": 1})
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "insufficient_credit"
    assert body["type"] == "urn:talktime:problem:insufficient_credit"
    assert body["detail"] == "Add credit to send this message."
    assert body["needed"] == "0.0200"


def test_invalid_input_names_the_field(tmp_path: Path) -> None:
    response = _client(tmp_path).post("/refuse", json={"amount": "many"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["errors"][0]["field"] == "amount"
    assert body["detail"].startswith("amount:")
