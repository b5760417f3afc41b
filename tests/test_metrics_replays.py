"""`talktime_charges_total` counts only requests that moved money."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from talktime.api import create_app
from talktime.config import Settings
from talktime.ops.metrics import Metrics

import apikit
from apikit import tenant


def _charges(metrics: Metrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    return {
        s.labels["route"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "talktime_charges_total"
    }


def test_charges_skip_answers_that_moved_no_money() -> None:
    metrics = Metrics()
    metrics.observe("POST", "/v1/credits", 201, 0.01, None)
    for _ in range(3):  # replays of the same Idempotency-Key
        metrics.observe("POST", "/v1/credits", 201, 0.01, None, moved_money=False)
    metrics.observe("POST", "/v1/messages/inbound", 201, 0.01, None, moved_money=False)
    assert _charges(metrics) == {"/v1/credits": 1.0}


def test_replays_are_marked_and_not_counted_as_charges(api: Any) -> None:
    # four identical requests with one Idempotency-Key moved money once: count one charge
    t = tenant(api, credit="5.00")
    body = {"from": t.number, "to": "+14155550111", "text": "once", "user": t.user}
    sends = [t.post("/v1/messages", body, key="same-send") for _ in range(4)]
    assert [s.headers.get("Idempotent-Replayed") for s in sends] == [None, "true", "true", "true"]
    assert len({s.content for s in sends}) == 1
    call = {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user}
    held = t.post("/v1/calls", call, key="same-call").json()
    dones = [
        t.post(f"/v1/calls/{held['id']}/complete", {"duration": 30}, key="same-done")
        for _ in range(3)
    ]
    assert [d.headers.get("Idempotent-Replayed") for d in dones] == [None, "true", "true"]
    m = _charges_of(api.get("/metrics").text)
    assert m["/v1/messages"] == 1
    assert m["/v1/calls/{call_id}/complete"] == 1
    assert m["/v1/numbers"] == 1  # the tenant's own number


def test_a_replayed_purchase_is_marked_and_counted_once(db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=db_url,
        admin_key=apikit.ADMIN_KEY,
        rate_cards_dir=str(tmp_path / "cards"),
        payment_provider="test",
    )
    with TestClient(create_app(settings)) as client:
        t = tenant(client, number=None)
        buys = [t.post("/v1/credits", {"amount": "10.00"}, key="same-buy") for _ in range(4)]
        assert [b.status_code for b in buys] == [201] * 4
        assert [b.headers.get("Idempotent-Replayed") for b in buys] == [None] + ["true"] * 3
        assert _charges_of(client.get("/metrics").text) == {"/v1/credits": 1}
        client.app.state.engine.dispose()  # type: ignore[attr-defined]


def _charges_of(text: str) -> dict[str, float]:
    return {
        s.labels["route"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "talktime_charges_total"
    }
