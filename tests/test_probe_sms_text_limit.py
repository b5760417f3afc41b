"""The text limit (`sms_max_text_chars`, 1,600) answers 422 `text_too_long` with the limit for
every longer text the body limit lets through, not a generic `invalid_request` naming another
bound past 20,000 characters; both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from talktime.api import create_app
from talktime.config import MAX_SMS_TEXT_CHARS, Settings, SettingsError, load_settings

from apikit import tenant


@pytest.mark.parametrize("length", [1601, 20_000, 20_001, 60_000])
def test_every_text_over_the_limit_is_text_too_long_with_the_limit(api: Any, length: int) -> None:
    t = tenant(api)
    before = t.balance()
    outbound = t.sms("+14155550111", "a" * length)
    inbound = t.post(
        "/v1/messages/inbound", {"from": "+14155550111", "to": t.number, "text": "a" * length}
    )
    for response in (outbound, inbound):
        problem = response.json()
        assert (response.status_code, problem["code"], problem["limit"]) == (
            422,
            "text_too_long",
            1600,
        ), problem
        assert f"The text has {length} characters; the limit is 1600." == problem["detail"]
    assert t.balance() == before


def test_a_body_over_the_body_limit_is_still_body_too_large(api: Any) -> None:
    t = tenant(api)
    response = t.sms("+14155550111", "a" * 70_000)
    assert (response.status_code, response.json()["code"]) == (413, "body_too_large")


def test_the_openapi_document_publishes_the_configured_text_limit_as_max_length(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", sms_max_text_chars=321)
    schema = create_app(settings).openapi()
    models = schema["components"]["schemas"]
    for model in ("MessageIn", "InboundIn", "SmsQuoteRequest"):
        text = models[model]["properties"]["text"]
        assert text["maxLength"] == 321, model  # was 100000 whatever the setting
        assert "sms_max_text_chars" in text["description"]
    assert models["SegmentsRequest"]["properties"]["text"]["maxLength"] == MAX_SMS_TEXT_CHARS
    assert "x-talktime" not in json.dumps(schema)


def test_a_text_limit_past_the_longest_text_the_api_reads_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_SMS_MAX_TEXT_CHARS", str(MAX_SMS_TEXT_CHARS + 1))
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "TALKTIME_SMS_MAX_TEXT_CHARS" in refused.value.detail
    assert f"must be at most {MAX_SMS_TEXT_CHARS} characters" in refused.value.detail
    monkeypatch.setenv("TALKTIME_SMS_MAX_TEXT_CHARS", str(MAX_SMS_TEXT_CHARS))
    assert load_settings().sms_max_text_chars == MAX_SMS_TEXT_CHARS
