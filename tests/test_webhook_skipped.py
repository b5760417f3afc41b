"""What a disabled endpoint misses can be redelivered: an event that matches it while it is
disabled gets a `skipped` delivery, listed with its deliveries and never attempted by the worker;
once the endpoint is enabled again, redelivering it sends it, signed with the endpoint's secret.
Other accounts' events and types the endpoint does not ask for get no delivery; an enabled
endpoint's deliveries are sent as before. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.ops import jobs, signing, tasks, webhooks  # noqa: F401 - tasks: the Worker's handlers
from talktime.ops.clock import HOUR, now_us
from talktime.ops.worker import Worker
from talktime.store.ops_tables import webhook_deliveries
from talktime.wallet import outbox

from ops_helpers import api_client, bearer, make_account, settings_for, wallet_events
from receiver import receiver


def _deliveries(client: TestClient, endpoint_id: str, auth: dict[str, str]) -> Any:
    response = client.get(f"/v1/webhooks/endpoints/{endpoint_id}/deliveries", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def _delivery_jobs(engine: sa.Engine) -> list[jobs.JobRow]:
    return [
        j
        for j in jobs.list_jobs(engine, ("pending", "running", "done", "failed"))
        if j.kind == webhooks.DELIVER
    ]


def test_an_event_while_the_endpoint_is_disabled_is_listed_skipped_and_never_sent(
    db_url: str,
) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    auth = bearer(engine, account)
    worker = Worker(engine, settings_for(engine), name="w")
    with receiver([200]) as hook:
        endpoint = client.post(
            "/v1/webhooks/endpoints", json={"url": hook.url, "event_types": ["*"]}, headers=auth
        ).json()
        patched = client.patch(
            f"/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": False}, headers=auth
        )
        assert patched.status_code == 200, patched.text
        wallet_events(engine, account)
        worker.run_once()
        # a sweep a day and more later still leaves it alone: it is not a lost pending delivery
        assert webhooks.sweep(engine, now=now_us() + 48 * HOUR) == 0
        worker.run_once()
        assert hook.requests == []
    [skipped] = _deliveries(client, endpoint["id"], auth)
    assert skipped["event_type"] == "recharge.succeeded"
    assert skipped["event_id"].startswith("evt_")
    assert (skipped["state"], skipped["attempts"]) == ("skipped", 0)
    assert (skipped["next_attempt_at"], skipped["delivered_at"]) == (None, None)
    assert skipped["attempt_log"] == []
    assert _delivery_jobs(engine) == [], "no attempt was queued for it"
    counts = webhooks.failure_counts(engine)
    assert (counts["deliveries_skipped"], counts["deliveries_failed"]) == (1, 0)


def test_a_skipped_delivery_is_redelivered_signed_once_the_endpoint_is_enabled(
    db_url: str,
) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    auth = bearer(engine, account)
    worker = Worker(engine, settings_for(engine), name="w")
    with receiver([200]) as hook:
        endpoint = client.post(
            "/v1/webhooks/endpoints", json={"url": hook.url}, headers=auth
        ).json()
        base = f"/v1/webhooks/endpoints/{endpoint['id']}"
        assert client.patch(base, json={"enabled": False}, headers=auth).status_code == 200
        wallet_events(engine, account)
        worker.run_once()
        [skipped] = _deliveries(client, endpoint["id"], auth)
        redeliver = f"/v1/webhooks/deliveries/{skipped['id']}/redeliver"
        refused = client.post(redeliver, headers=auth)
        assert refused.status_code == 409
        assert refused.json()["code"] == "webhook_endpoint_disabled"
        assert client.patch(base, json={"enabled": True}, headers=auth).status_code == 200
        worker.run_once()
        assert hook.requests == [], "re-enabling alone sends nothing"
        assert client.post(redeliver, headers=auth).status_code == 202
        worker.run_once()
        [request] = hook.requests
    assert signing.verify(endpoint["secret"], request.headers, request.body) == skipped["event_id"]
    sent = json.loads(request.body)
    assert (sent["id"], sent["type"]) == (skipped["event_id"], "recharge.succeeded")
    assert sent["data"]["amount"] == "10.0000"
    [delivery] = _deliveries(client, endpoint["id"], auth)
    assert (delivery["id"], delivery["state"]) == (skipped["id"], "delivered")
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["ok"]
    assert webhooks.failure_counts(engine)["deliveries_skipped"] == 0


def test_a_disabled_endpoint_gets_nothing_for_other_accounts_or_types_it_does_not_ask_for(
    engine: sa.Engine,
) -> None:
    settings = settings_for(engine)
    account, other = make_account(engine), make_account(engine, "other")
    low_only = webhooks.create_endpoint(
        engine, settings, account, "http://127.0.0.1:9/low", ["balance.low"]
    )
    others = webhooks.create_endpoint(engine, settings, other, "http://127.0.0.1:9/other")
    for endpoint in (low_only, others):
        webhooks.update_endpoint(engine, settings, endpoint.account_id, endpoint.id, enabled=False)
    with engine.begin() as conn:
        webhooks.record_event(conn, other, "balance.low", {})
        webhooks.record_event(conn, account, "recharge.succeeded", {})
        low = webhooks.record_event(conn, account, "balance.low", {})
    [skipped] = webhooks.list_deliveries(engine, account, low_only.id)
    assert (skipped["event_id"], skipped["state"]) == (low, "skipped")
    [theirs] = webhooks.list_deliveries(engine, other, others.id)
    assert theirs["state"] == "skipped"
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(webhook_deliveries.c.account_id, webhook_deliveries.c.endpoint_id)
        ).all()
    assert sorted(rows) == sorted([(account, low_only.id), (other, others.id)])


def test_an_enabled_endpoint_next_to_a_disabled_one_is_sent_to_as_before(
    engine: sa.Engine,
) -> None:
    settings = settings_for(engine)
    account = make_account(engine)
    worker = Worker(engine, settings, name="w")
    with receiver([200]) as live, receiver([200]) as off:
        enabled = webhooks.create_endpoint(engine, settings, account, live.url)
        disabled = webhooks.create_endpoint(engine, settings, account, off.url)
        webhooks.update_endpoint(engine, settings, account, disabled.id, enabled=False)
        wallet_events(engine, account, type_=outbox.BALANCE_LOW)
        worker.run_once()
        assert len(live.requests) == 1
        assert off.requests == []
    [sent] = webhooks.list_deliveries(engine, account, enabled.id)
    assert (sent["state"], sent["attempts"]) == ("delivered", 1)
    [job] = _delivery_jobs(engine)
    assert job.dedupe_key == f"webhook:{sent['id']}:1"
    [skipped] = webhooks.list_deliveries(engine, account, disabled.id)
    assert (skipped["event_id"], skipped["state"]) == (sent["event_id"], "skipped")


def test_the_openapi_document_lists_every_delivery_state() -> None:
    client, _ = api_client("sqlite://")
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Delivery"]
    states = schema["properties"]["state"]["enum"]
    assert sorted(states) == ["delivered", "failed", "pending", "skipped"]
