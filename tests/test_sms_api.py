"""POST /v1/sms/segments: in-process, with raw JSON for the lone surrogate, and over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings

from live import serve


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")))


def test_segments_returns_every_field(client: TestClient) -> None:
    response = client.post("/v1/sms/segments", json={"text": "a" * 161})
    assert response.status_code == 200
    body = response.json()
    assert body["encoding"] == "GSM-7"
    assert body["segments"] == 2
    assert body["units"] == 161
    assert body["parts"] == ["a" * 153, "a" * 8]
    assert body["part_units"] == [153, 8]
    assert body["non_gsm"] == []
    assert body["text"] == "a" * 161
    assert body["replacements"] == []
    assert body["remaining"] == 145
    assert body["part_capacity"] == 153


def test_segments_with_smart_encoding_and_language(client: TestClient) -> None:
    body = client.post(
        "/v1/sms/segments", json={"text": "Şişe’s", "smart_encoding": True, "language": "tr"}
    ).json()
    assert body["encoding"] == "GSM-7"
    assert body["text"] == "Şişe's"
    assert body["replacements"] == [["’", "'"]]
    assert body["locking_shift"] == "tr"


def test_segments_reports_forcing_characters_and_split_mode(client: TestClient) -> None:
    text = "a" * 64 + "🧑\u200d🎄" + "b" * 65
    grapheme = client.post("/v1/sms/segments", json={"text": text}).json()
    strict = client.post("/v1/sms/segments", json={"text": text, "split": "code_point"}).json()
    assert (grapheme["segments"], strict["segments"]) == (3, 2)
    assert grapheme["non_gsm"] == ["🧑", "\u200d", "🎄"]


def test_lone_surrogate_in_raw_json_is_422_invalid_text(client: TestClient) -> None:
    response = client.post(
        "/v1/sms/segments",
        content=b'{"text": "hi \\ud83d"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid_text"
    assert problem["position"] == 3
    assert "surrogate" in problem["detail"]


@pytest.mark.parametrize(
    "body",
    [{"text": 5}, {}, {"text": "x", "language": "fr"}, {"text": "x", "split": "word"}],
    ids=["text-not-a-string", "text-missing", "unknown-language", "unknown-split"],
)
def test_bad_requests_are_422_invalid_request(client: TestClient, body: dict[str, object]) -> None:
    response = client.post("/v1/sms/segments", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_segments_over_real_http(tmp_path: Path) -> None:
    with serve(f"sqlite:///{tmp_path / 'live.db'}") as server:
        response = httpx.post(f"{server.base_url}/v1/sms/segments", json={"text": "Price: 5€ 👍🏽"})
    assert response.status_code == 200
    assert response.json()["encoding"] == "UCS-2"
    assert response.json()["non_gsm"] == ["👍", "🏽"]
