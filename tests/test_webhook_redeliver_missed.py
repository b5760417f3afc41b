"""`POST /v1/webhooks/endpoints/{id}/redeliver` sends again, in one call, what an endpoint
missed: its `skipped` deliveries (events that came while it was disabled) and `failed` ones
(given up), oldest first, at most 1,000 a call with `more` telling whether to call again;
pending and delivered ones are left alone, and a disabled endpoint is 409. On SQLite and
PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from talktime.ops import tasks, webhooks  # noqa: F401 - tasks: the Worker's handlers
from talktime.ops.worker import Worker
from talktime.store.ops_tables import webhook_deliveries

from ops_helpers import api_client, bearer, make_account, settings_for, wallet_events
from receiver import receiver


def _states(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(webhook_deliveries.c.state).order_by(webhook_deliveries.c.id)
        ).scalars()
        return list(rows)


def test_every_missed_delivery_is_sent_again_in_one_call_once_the_endpoint_is_enabled(
    db_url: str,
) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    auth = bearer(engine, account)
    worker = Worker(engine, settings_for(engine), name="w")
    with receiver([200] * 10) as hook:
        endpoint = client.post(
            "/v1/webhooks/endpoints", json={"url": hook.url}, headers=auth
        ).json()
        path = f"/v1/webhooks/endpoints/{endpoint['id']}"
        wallet_events(engine, account, 1)
        worker.run_once()
        assert len(hook.requests) == 1  # delivered while enabled: left alone below
        client.patch(path, json={"enabled": False}, headers=auth)
        wallet_events(engine, account, 3)
        worker.run_once()
        assert _states(engine) == ["delivered", "skipped", "skipped", "skipped"]
        refused = client.post(f"{path}/redeliver", headers=auth)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "webhook_endpoint_disabled"
        client.patch(path, json={"enabled": True}, headers=auth)
        answer = client.post(f"{path}/redeliver", headers=auth)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"queued": 3, "more": False}
        worker.run_once()
        assert len(hook.requests) == 4
        assert _states(engine) == ["delivered"] * 4
        again = client.post(f"{path}/redeliver", headers=auth)
        assert again.json() == {"queued": 0, "more": False}  # nothing missed any more


def test_a_bulk_redelivery_queues_a_batch_at_a_time_and_filters_by_state_and_time(
    db_url: str,
) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    auth = bearer(engine, account)
    worker = Worker(engine, settings_for(engine), name="w")
    endpoint = client.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hooks"}, headers=auth
    ).json()
    path = f"/v1/webhooks/endpoints/{endpoint['id']}"
    client.patch(path, json={"enabled": False}, headers=auth)
    wallet_events(engine, account, 5)
    worker.run_once()
    client.patch(path, json={"enabled": True}, headers=auth)
    only_failed = client.post(f"{path}/redeliver", json={"states": ["failed"]}, headers=auth)
    assert only_failed.json() == {"queued": 0, "more": False}
    future = client.post(f"{path}/redeliver", json={"since": "2999-01-01T00:00:00Z"}, headers=auth)
    assert future.json() == {"queued": 0, "more": False}
    queued, more = webhooks.redeliver_missed(engine, account, endpoint["id"], limit=2)
    assert (queued, more) == (2, True)
    assert _states(engine) == ["pending", "pending", "skipped", "skipped", "skipped"]
    assert webhooks.redeliver_missed(engine, account, endpoint["id"], limit=3) == (3, False)
    bad = client.post(f"{path}/redeliver", json={"states": ["delivered"]}, headers=auth)
    assert bad.status_code == 422, bad.text


def test_another_accounts_endpoint_is_not_found_for_a_bulk_redelivery(db_url: str) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    owner = make_account(engine)
    endpoint = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hooks"},
        headers=bearer(engine, owner),
    ).json()
    other = bearer(engine, make_account(engine, name="Other"))
    answer = client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/redeliver", headers=other)
    assert answer.status_code == 404, answer.text
