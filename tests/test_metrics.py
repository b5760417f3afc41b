"""`GET /metrics`: request and refusal counters from live traffic, job queue lag and webhook
failures read from the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from talktime.api import create_app
from talktime.config import Settings
from talktime.ops import jobs, webhooks
from talktime.ops.clock import SECOND, now_us

from apikit import tenant


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_refusals_charges_jobs_and_webhook_failures(api: Any) -> None:
    app = api.app
    engine: sa.Engine = app.state.engine
    t = tenant(api, credit="5.00")
    assert t.sms("+14155550111").status_code == 201
    assert t.sms("+14155550111", media=["https://example.com/a.png"]).status_code == 422
    with engine.begin() as conn:
        jobs.enqueue(conn, "some.kind", run_at=now_us() - 30 * SECOND)
    settings = Settings(database_url=str(engine.url), webhooks_allow_private=True)
    endpoint = webhooks.create_endpoint(
        engine, settings, t.account_id, "http://127.0.0.1:9/nothing-listens"
    )
    with engine.begin() as conn:
        webhooks.record_event(conn, t.account_id, "balance.low", {})
    [delivery] = webhooks.list_deliveries(engine, t.account_id, endpoint.id)
    webhooks.deliver(engine, settings, delivery["id"])

    assert api.get("/v1/balance").status_code == 401
    assert api.get("/v1/balance").status_code == 401
    assert api.get("/healthz").status_code == 200
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    m = _samples(response.text)
    assert m[("talktime_refusals_total", (("code", "unauthorized"), ("status", "401")))] == 2
    assert m[("talktime_refusals_total", (("code", "mms_not_supported"), ("status", "422")))] == 1
    route = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    assert m[("talktime_http_requests_total", route)] == 1
    assert m[("talktime_charges_total", (("route", "/v1/messages"),))] == 1
    assert m[("talktime_charges_total", (("route", "/v1/numbers"),))] == 1
    assert m[("talktime_jobs", (("state", "pending"),))] >= 1
    assert m[("talktime_job_lag_seconds", ())] >= 30
    assert m[("talktime_webhook_failed_attempts", (("outcome", "network_error"),))] == 1
    assert m[("talktime_webhook_endpoints_disabled", ())] == 0
    assert m[("talktime_webhook_deliveries_failed", ())] == 0
    assert m[("talktime_webhook_deliveries_skipped", ())] == 0


def test_metrics_answer_even_when_the_database_is_not_migrated(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    assert _samples(response.text)[("talktime_store_up", ())] == 0
