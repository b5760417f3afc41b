"""Redelivery always makes one attempt now: after the disabled endpoint skipped a delivery, and
for a pending delivery whose retry is still scheduled (that retry then sends nothing). And the
reason an endpoint is disabled names the attempt that gave up, not the one before it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from talktime.ops import tasks, webhooks  # noqa: F401 - tasks: the Worker's handlers
from talktime.ops.clock import HOUR, SECOND
from talktime.ops.worker import Worker

from ops_helpers import (
    api_client,
    attempt_outcomes,
    bearer,
    hooked_event,
    make_account,
    next_run_at,
    run_due,
    settings_for,
)
from receiver import receiver


def test_redelivering_what_a_disabled_endpoint_missed_sends_it(db_url: str) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    auth = bearer(engine, account)
    worker = Worker(engine, settings_for(engine), name="w")
    with receiver([200]) as hook:
        endpoint = client.post(
            "/v1/webhooks/endpoints", json={"url": hook.url}, headers=auth
        ).json()
        base = f"/v1/webhooks/endpoints/{endpoint['id']}"
        with engine.begin() as conn:
            webhooks.record_event(conn, account, "balance.low", {"n": 1})
        assert client.patch(base, json={"enabled": False}, headers=auth).status_code == 200
        worker.run_once()
        [missed] = client.get(f"{base}/deliveries", headers=auth).json()
        assert (missed["state"], missed["attempts"]) == ("failed", 0)
        assert client.patch(base, json={"enabled": True}, headers=auth).status_code == 200
        redo = client.post(f"/v1/webhooks/deliveries/{missed['id']}/redeliver", headers=auth)
        assert redo.status_code == 202
        worker.run_once()
        assert len(hook.requests) == 1
    [delivery] = client.get(f"{base}/deliveries", headers=auth).json()
    assert delivery["state"] == "delivered"
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["ok"]


def test_redelivering_a_pending_delivery_sends_now_and_its_scheduled_retry_sends_nothing(
    engine: sa.Engine,
) -> None:
    with hooked_event(engine, [500, 500, 200]) as (account, settings, t0, hook, endpoint):
        assert run_due(engine, settings, t0) == ["pending"]
        assert next_run_at(engine) == t0 + 30 * SECOND
        [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
        webhooks.redeliver(engine, account, delivery["id"], now=t0 + 5 * SECOND)
        assert run_due(engine, settings, t0 + 5 * SECOND) == ["pending"]
        assert len(hook.requests) == 2, "the redelivery went at once, not at the old retry time"
        # the retry scheduled before the redelivery is due now, but the next attempt is not
        assert run_due(engine, settings, t0 + 30 * SECOND) == ["pending"]
        assert len(hook.requests) == 2, "the superseded retry sent no second copy"
        # the redelivery's fresh window retries on the schedule from its start: 30 s after it
        assert next_run_at(engine) == t0 + 35 * SECOND
        assert run_due(engine, settings, t0 + 35 * SECOND) == ["delivered"]
        assert len(hook.requests) == 3
        assert len(set(hook.ids())) == 1
    assert attempt_outcomes(engine, account, endpoint.id) == ["http_error", "http_error", "ok"]


def test_redelivering_a_delivered_delivery_twice_sends_it_twice(engine: sa.Engine) -> None:
    with hooked_event(engine, [200]) as (account, settings, t0, hook, endpoint):
        assert run_due(engine, settings, t0) == ["delivered"]
        [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
        for n in (1, 2):
            webhooks.redeliver(engine, account, delivery["id"], now=t0 + n * SECOND)
            assert run_due(engine, settings, t0 + n * SECOND) == ["delivered"]
        assert len(hook.requests) == 3
    assert attempt_outcomes(engine, account, endpoint.id) == ["ok", "ok", "ok"]


def test_the_disabled_reason_names_the_attempt_that_gave_up(engine: sa.Engine) -> None:
    with hooked_event(engine, [500]) as (account, settings, t0, hook, endpoint):
        for _ in range(3):
            at = next_run_at(engine)
            assert at is not None
            assert run_due(engine, settings, at) == ["pending"]
        assert len(hook.requests) == 3
    # nothing listens on port 9 any more: the last attempt is a network error
    webhooks.update_endpoint(engine, settings, account, endpoint.id, url="http://127.0.0.1:9/x")
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    assert webhooks.deliver(engine, settings, delivery["id"], now=t0 + 25 * HOUR) == "failed"
    disabled = webhooks.get_endpoint(engine, account, endpoint.id)
    assert not disabled.enabled
    assert disabled.disabled_reason is not None
    assert "(4 attempts, last: network_error)" in disabled.disabled_reason
    # the earlier 500s are not named (the event id before " failed " may hold "500" by chance)
    assert "500" not in disabled.disabled_reason.partition(" failed ")[2]


def test_an_attempt_overtaken_by_a_redelivery_is_logged_and_the_redelivery_decides_the_state(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The receiver got the overtaken attempt, so the log shows it (until 1 Dec it went
    # unlogged); its 500 schedules no retry, as the redelivery now owns the delivery.
    with hooked_event(engine, [500, 200]) as (account, settings, t0, hook, endpoint):
        post = webhooks._post
        [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)

        def post_then_redeliver(*args: Any) -> webhooks.AttemptResult:
            result = post(*args)
            webhooks.redeliver(engine, account, delivery["id"], now=t0 + SECOND)
            return result

        monkeypatch.setattr(webhooks, "_post", post_then_redeliver)
        assert webhooks.deliver(engine, settings, delivery["id"], now=t0) == "pending"
        monkeypatch.setattr(webhooks, "_post", post)
        assert attempt_outcomes(engine, account, endpoint.id) == ["http_error"]
        assert "delivered" in run_due(engine, settings, t0 + SECOND)
        assert len(hook.requests) == 2
    assert attempt_outcomes(engine, account, endpoint.id) == ["http_error", "ok"]
    [after] = webhooks.list_deliveries(engine, account, endpoint.id)
    assert after["state"] == "delivered"
    assert after["attempts"] == 2
