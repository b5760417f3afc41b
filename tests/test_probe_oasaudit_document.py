"""The OpenAPI document against real answers: what `tests/test_api_schema.py`'s generated
requests do not reach (a degraded `/healthz`, a database that is down or not migrated, a
missing Idempotency-Key, a replay, the response headers, `/metrics`)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings

import apikit

WELL_FORMED_KEY = "Bearer tt_" + "a" * 8 + "_" + "b" * 32
"""A key of the right shape that no database holds: its lookup reaches the database."""


def _document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _conforms(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """``response`` has a documented status, media type, body schema and headers."""
    operation = document["paths"][path][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {path}: {response.status_code} is not documented"
    media = response.headers["content-type"].split(";")[0]
    assert media in documented["content"], f"{method} {path}: {media} is not documented"
    schema = documented["content"][media]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": document["components"]})
    errors = [error.message for error in validator.iter_errors(response.json())]
    assert not errors, errors
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, f"{method} {path}: no {name} header"


def test_a_degraded_healthz_sends_the_503_health_document_its_schema_describes(
    unmigrated_url: str,
) -> None:
    app = create_app(Settings(database_url=unmigrated_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        _conforms(_document(client), "GET", "/healthz", response)
    app.state.engine.dispose()


def test_every_operation_that_looks_up_an_api_key_documents_the_503_of_a_database_down(
    unmigrated_url: str,
) -> None:
    app = create_app(Settings(database_url=unmigrated_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        document = _document(client)
        response = client.get("/v1/balance", headers={"Authorization": WELL_FORMED_KEY})
        assert response.status_code == 503
        assert response.json()["code"] == "database_not_migrated"
        _conforms(document, "GET", "/v1/balance", response)
    app.state.engine.dispose()
    secured = [(m, p, op) for m, p, op in _operations(document) if op.get("security")]
    assert len(secured) > 40
    for method, path, operation in secured:
        assert "503" in operation["responses"], f"{method} {path}"
        assert "application/problem+json" in operation["responses"]["503"]["content"]


def test_a_missing_idempotency_key_is_refused_where_the_header_is_documented_as_required(
    api: TestClient,
) -> None:
    t = apikit.tenant(api, number=None)
    response = api.post("/v1/numbers", json={"e164": "+14155550100"}, headers=t.auth)
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"
    document = _document(api)
    reading = [
        (method, path, parameter)
        for method, path, operation in _operations(document)
        for parameter in operation.get("parameters", ())
        if parameter["name"] == "Idempotency-Key"
    ]
    assert len(reading) == 11
    for method, path, parameter in reading:
        assert parameter["required"] is True, f"{method} {path}"
        assert parameter["schema"]["type"] == "string", f"{method} {path}"


@pytest.mark.parametrize("path", ["/v1/numbers", "/v1/admin/accounts"])
def test_an_overlong_idempotency_key_is_refused_naming_the_header_like_the_other_key_errors(
    api: TestClient, path: str
) -> None:
    """161 characters was FastAPI's own 422, with no top-level `field` (only
    `errors[0].field` = `header.Idempotency-Key`); a missing, blank, doubled or line-breaking
    key names `Idempotency-Key`. The document still says at most 160."""
    t = apikit.tenant(api, number=None)
    auth, body = (
        (t.auth, {"e164": "+14155550100"})
        if path == "/v1/numbers"
        else (apikit.ADMIN, {"name": "Long Key Ltd", "plan": "startup"})
    )
    fits = api.post(path, json=body, headers={**auth, "Idempotency-Key": "k" * 160})
    assert fits.status_code == 201, fits.text
    response = api.post(path, json=body, headers={**auth, "Idempotency-Key": "k" * 161})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["code"], problem["field"]) == ("invalid_request", "Idempotency-Key")
    assert "160" in problem["detail"]
    _conforms(_document(api), "POST", path, response)
    parameter = next(
        p
        for p in _document(api)["paths"][path]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert parameter["schema"]["maxLength"] == 160


def test_a_replay_carries_the_documented_idempotent_replayed_and_request_id_headers(
    api: TestClient,
) -> None:
    t = apikit.tenant(api, number=None, credit="5.00")
    first = t.post("/v1/numbers", {"e164": "+14155550100"}, key="replayed")
    again = t.post("/v1/numbers", {"e164": "+14155550100"}, key="replayed")
    assert (first.status_code, again.status_code) == (201, 201)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    document = _document(api)
    _conforms(document, "POST", "/v1/numbers", again)
    headers = document["paths"]["/v1/numbers"]["post"]["responses"]["201"]["headers"]
    assert headers["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            assert "X-Request-ID" in response["headers"], f"{method} {path} {status}"


def test_metrics_documents_the_text_body_it_sends() -> None:
    app = create_app(Settings(database_url="sqlite://"))
    with TestClient(app) as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        documented = _document(client)["paths"]["/metrics"]["get"]["responses"]["200"]
    assert response.headers["content-type"].split(";")[0] in documented["content"]


def test_a_call_quote_documents_the_longest_leg_it_prices() -> None:
    app = create_app(Settings(database_url="sqlite://"))
    with TestClient(app) as client:
        schemas = _document(client)["components"]["schemas"]
        call = {"direction": "outbound", "from": "+14155550100", "to": "+14155550111"}
        week = int(schemas["CallQuoteRequest"]["properties"]["duration"]["maximum"])
        assert client.post("/v1/quotes/calls", json={**call, "duration": week}).status_code == 200
        longer = client.post("/v1/quotes/calls", json={**call, "duration": week + 1})
    assert longer.status_code == 422
    assert schemas["ForwardBody"]["properties"]["duration"]["maximum"] == week
    transfer = schemas["TransferBody"]["properties"]
    assert transfer["outbound_duration"]["maximum"] == transfer["inbound_duration"]["maximum"]
    assert transfer["inbound_duration"]["maximum"] == week


def test_buying_credit_documents_its_own_402_and_409_refusals() -> None:
    app = create_app(Settings(database_url="sqlite://"))
    with TestClient(app) as client:
        responses = _document(client)["paths"]["/v1/credits"]["post"]["responses"]
        amount = _document(client)["components"]["schemas"]["PurchaseIn"]["properties"]["amount"]
    assert "payment_declined" in responses["402"]["description"]
    assert "monthly limit" not in responses["402"]["description"]
    assert "automatic_payment_unavailable" in responses["409"]["description"]
    assert "whole cents" in amount["description"]


def test_whole_number_bounds_are_written_as_integers() -> None:
    # FastAPI wrote `"maximum": 604800.0`, a float the strict integer fields refuse
    document = create_app(Settings(database_url="sqlite://")).openapi()
    duration = document["components"]["schemas"]["CallCompleteIn"]["properties"]["duration"]
    assert (duration["minimum"], duration["maximum"]) == (0, 604800)
    assert all(type(bound) is int for bound in (duration["minimum"], duration["maximum"]))
