"""Unknown fields in a body are refused on every operation, webhook endpoints and the segment
calculator included: `{"enabled": false}` at creation made an endpoint that was enabled and
received events, and a misspelt `enable` or `smart_encodng` answered 200 having ignored it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings

from apikit import ADMIN_KEY, tenant


def _client(db_url: str, tmp_path: Path) -> TestClient:
    settings = Settings(
        database_url=db_url,
        admin_key=ADMIN_KEY,
        rate_cards_dir=str(tmp_path / "cards"),
        webhooks_allow_private=True,
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _refused(answer: Any, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_request"
    assert [e["field"] for e in answer.json()["errors"]] == [field]


def test_a_webhook_endpoint_created_with_an_unknown_field_is_refused_and_not_created(
    db_url: str, tmp_path: Path
) -> None:
    with _client(db_url, tmp_path) as api:
        t = tenant(api)
        answer = api.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/x", "enabled": False},
            headers=t.auth,
        )
        _refused(answer, "enabled")
        assert api.get("/v1/webhooks/endpoints", headers=t.auth).json() == []


def test_a_misspelt_field_in_a_webhook_endpoint_patch_is_refused_and_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    with _client(db_url, tmp_path) as api:
        t = tenant(api)
        created = api.post(
            "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=t.auth
        ).json()
        url = f"/v1/webhooks/endpoints/{created['id']}"
        _refused(api.patch(url, json={"enable": False}, headers=t.auth), "enable")
        assert api.get(url, headers=t.auth).json()["enabled"] is True


def test_a_misspelt_option_of_the_segment_calculator_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    with _client(db_url, tmp_path) as api:
        answer = api.post("/v1/sms/segments", json={"text": "“hi”", "smart_encodng": True})
        _refused(answer, "smart_encodng")
        good = api.post("/v1/sms/segments", json={"text": "“hi”", "smart_encoding": True})
        assert good.json()["encoding"] == "GSM-7"


def test_every_json_request_body_of_the_schema_refuses_unknown_fields(tmp_path: Path) -> None:
    # the OpenAPI document, which no database changes: checked once, not per backend
    with _client("sqlite://", tmp_path) as api:
        spec = api.app.openapi()  # type: ignore[attr-defined]
        schemas = spec["components"]["schemas"]
        open_bodies = []
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                content = op.get("requestBody", {}).get("content", {})
                ref = content.get("application/json", {}).get("schema", {}).get("$ref")
                if ref is None:
                    continue
                schema = schemas[ref.rsplit("/", 1)[1]]
                if schema.get("additionalProperties") is not False:
                    open_bodies.append(f"{method.upper()} {path}")
        assert open_bodies == []
