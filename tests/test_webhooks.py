"""Webhooks end to end against a real receiver on a loopback port: Standard Webhooks signatures,
retries with back-off, the attempt log, disabling after 24 hours, redelivery, dedupe on
`webhook-id`, URL policy, and two worker processes / a SIGKILLed worker never losing or doubling
a delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import time
from collections.abc import Mapping

import pytest
import sqlalchemy as sa

from talktime.config import Settings
from talktime.ops import signing, tasks, webhooks
from talktime.ops.clock import HOUR, SECOND, now_us
from talktime.ops.urlpolicy import WebhookUrlNotAllowedError, check_url
from talktime.ops.worker import Worker
from talktime.store.ops_tables import webhook_attempts, webhook_deliveries, webhook_events
from talktime.store.wallet_tables import outbox

from ops_helpers import (
    endpoint_with_event,
    make_account,
    next_run_at,
    run_due,
    settings_for,
    start_worker,
    wait_for,
)
from receiver import Receiver, receiver


def verify_like_a_receiver(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """The README's verification example, verbatim: returns the webhook-id or raises."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        raise ValueError("stale webhook")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split():
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return msg_id
    raise ValueError("bad signature")


def emit(engine: sa.Engine, account: int, event_type: str, data: dict[str, object]) -> int:
    """Write an event to the wallet's outbox, as the wallet does."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                outbox.insert()
                .values(account_id=account, type=event_type, payload=data, created_at=now_us())
                .returning(outbox.c.id)
            ).scalar_one()
        )


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    head = signing.headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signing.verify(secret, head, body, now=1614265330 + 10) == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    with pytest.raises(signing.WebhookSignatureError):
        signing.verify(secret, head, body + b" ", now=1614265330)
    with pytest.raises(signing.WebhookSignatureError):
        signing.verify(secret, head, body, now=1614265330 + 301)


def test_generated_secrets_are_whsec_base64_of_32_bytes() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert signing.generate_secret() != secret


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(WebhookUrlNotAllowedError):
        check_url(url, allow_private=False)


def test_the_operator_setting_allows_loopback_but_never_link_local() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_private=True)
    assert check_url("http://10.0.0.1/x", allow_private=True)
    with pytest.raises(WebhookUrlNotAllowedError):
        check_url("http://169.254.169.254/", allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "http://user:pw@8.8.8.8/", "nonsense"]
)
def test_only_plain_http_and_https_urls_are_accepted(url: str) -> None:
    with pytest.raises(WebhookUrlNotAllowedError):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://[zz]/",  # a bracketed host that is no IPv6 address: urlsplit raises
        "https://" + "a" * 300 + ".com/",  # a label too long for IDNA: getaddrinfo raises
        "http://[::1]:99999/",
        "http://a..b/",
    ],
)
def test_a_malformed_url_is_refused_as_not_allowed_never_an_error(url: str) -> None:
    with pytest.raises(WebhookUrlNotAllowedError):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"])
def test_ipv6_loopback_is_treated_like_ipv4_loopback(host: str) -> None:
    assert check_url(f"http://{host}/hook", allow_private=True)
    with pytest.raises(WebhookUrlNotAllowedError, match="loopback"):
        check_url(f"http://{host}/hook", allow_private=False)


def test_public_addresses_are_allowed() -> None:
    assert check_url("https://8.8.8.8/hooks", allow_private=False)


def test_an_endpoint_on_loopback_is_refused_without_the_setting(engine: sa.Engine) -> None:
    account = make_account(engine)
    strict = Settings(database_url=str(engine.url))
    with pytest.raises(WebhookUrlNotAllowedError):
        webhooks.create_endpoint(engine, strict, account, "http://127.0.0.1:9/hooks")
    assert webhooks.list_endpoints(engine, account) == []


def test_an_outbox_event_reaches_the_receiver_signed_once(engine: sa.Engine) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    with receiver() as hook:
        endpoint = webhooks.create_endpoint(engine, settings, account, hook.url, ["balance.low"])
        emit(engine, account, "balance.low", {"paid": "0.50"})
        emit(engine, account, "credit.depleted", {})  # not subscribed
        worker = Worker(engine, settings, name="w")
        worker.run_once()
        assert len(hook.requests) == 1
        request = hook.requests[0]
    msg_id = verify_like_a_receiver(endpoint.secret, request.headers, request.body)
    assert signing.verify(endpoint.secret, request.headers, request.body) == msg_id
    doc = json.loads(request.body)
    assert doc["type"] == "balance.low"
    assert doc["data"] == {"paid": "0.50"}
    assert doc["id"] == msg_id
    assert request.headers["content-type"] == "application/json"
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    assert delivery["state"] == "delivered"
    [attempt] = delivery["attempt_log"]
    assert attempt["outcome"] == "ok"
    assert attempt["response_code"] == 200
    assert attempt["latency_ms"] > 0
    with engine.connect() as conn:
        undelivered = conn.execute(
            sa.select(sa.func.count()).where(outbox.c.delivered_at.is_(None))
        ).scalar()
    assert undelivered == 0
    assert tasks.dispatch_outbox(engine, "w") == 0


def test_failed_attempts_are_retried_with_backoff_and_logged(engine: sa.Engine) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    t0 = now_us()
    with receiver([500, 503, 200]) as hook:
        endpoint = webhooks.create_endpoint(engine, settings, account, hook.url)
        with engine.begin() as conn:
            webhooks.record_event(conn, account, "balance.low", {"n": 1}, now=t0)
        assert run_due(engine, settings, t0) == ["pending"]
        assert next_run_at(engine) == t0 + 30 * SECOND
        assert run_due(engine, settings, t0 + 29 * SECOND) == []
        assert run_due(engine, settings, t0 + 30 * SECOND) == ["pending"]
        assert next_run_at(engine) == t0 + 90 * SECOND
        assert run_due(engine, settings, t0 + 90 * SECOND) == ["delivered"]
        assert next_run_at(engine) is None
        ids = hook.ids()
    assert len(ids) == 3
    assert len(set(ids)) == 1, "every retry carries the same webhook-id"
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    log = delivery["attempt_log"]
    assert [a["outcome"] for a in log] == ["http_error", "http_error", "ok"]
    assert [a["response_code"] for a in log] == [500, 503, 200]
    assert webhooks.get_endpoint(engine, account, endpoint.id).failure_count == 0


def test_a_receiver_deduping_on_webhook_id_handles_each_event_once(engine: sa.Engine) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    t0 = now_us()
    with receiver([200]) as hook:
        endpoint = webhooks.create_endpoint(engine, settings, account, hook.url, ["balance.low"])
        for n in range(3):
            emit(engine, account, "balance.low", {"n": n})
        tasks.dispatch_outbox(engine, "w", now=t0)
        run_due(engine, settings, t0)
        [first, *_] = webhooks.list_deliveries(engine, account, endpoint.id)
        webhooks.redeliver(engine, account, first["id"], now=t0 + SECOND)
        run_due(engine, settings, t0 + SECOND)
        seen: dict[str, object] = {}
        for request in hook.requests:
            msg_id = verify_like_a_receiver(endpoint.secret, request.headers, request.body)
            seen.setdefault(msg_id, json.loads(request.body)["data"])
    assert len(hook.requests) == 4
    assert sorted(d["n"] for d in seen.values()) == [0, 1, 2]  # type: ignore[index]


def test_an_endpoint_failing_for_24_hours_is_disabled_and_the_account_told(
    engine: sa.Engine,
) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    t0 = now_us()
    with receiver([500]) as hook, receiver([200]) as other:
        failing = webhooks.create_endpoint(engine, settings, account, hook.url)
        healthy = webhooks.create_endpoint(
            engine, settings, account, other.url, [webhooks.ENDPOINT_DISABLED]
        )
        with engine.begin() as conn:
            webhooks.record_event(conn, account, "balance.low", {}, now=t0)
        now = t0
        while (at := next_run_at(engine)) is not None:
            now = at
            run_due(engine, settings, now)
        attempts = len(hook.requests)
        assert len(other.requests) == 1
        notice = json.loads(other.requests[0].body)
    assert now - t0 <= 24 * HOUR
    assert 10 <= attempts <= 20
    assert notice["type"] == "webhook_endpoint.disabled"
    assert notice["data"]["endpoint_id"] == failing.id
    endpoint = webhooks.get_endpoint(engine, account, failing.id)
    assert not endpoint.enabled
    assert endpoint.disabled_reason is not None
    assert "24 hours" in endpoint.disabled_reason
    [delivery] = webhooks.list_deliveries(engine, account, failing.id)
    assert delivery["state"] == "failed"
    assert len(delivery["attempt_log"]) == attempts
    assert webhooks.get_endpoint(engine, account, healthy.id).enabled
    # a new event is only noted for the disabled endpoint (`skipped`, no attempt queued); the
    # notice of its own disabling goes to the other endpoints only; redelivery needs it enabled
    with engine.begin() as conn:
        webhooks.record_event(conn, account, "balance.low", {}, now=now)
    assert next_run_at(engine) is None
    [skipped, delivery] = webhooks.list_deliveries(engine, account, failing.id)
    assert (skipped["state"], skipped["attempts"]) == ("skipped", 0)
    with pytest.raises(webhooks.WebhookEndpointDisabledError):
        webhooks.redeliver(engine, account, delivery["id"], now=now)
    with receiver([200]) as fixed:
        webhooks.update_endpoint(engine, settings, account, failing.id, url=fixed.url, enabled=True)
        webhooks.redeliver(engine, account, delivery["id"], now=now)
        webhooks.redeliver(engine, account, skipped["id"], now=now)
        assert run_due(engine, settings, now) == ["delivered", "delivered"]
        assert sorted(fixed.ids()) == sorted([delivery["event_id"], skipped["event_id"]])
    states = [d["state"] for d in webhooks.list_deliveries(engine, account, failing.id)]
    assert states == ["delivered", "delivered"]


def test_a_slow_receiver_times_out_and_is_retried(engine: sa.Engine) -> None:
    account = make_account(engine)
    settings = settings_for(engine, webhooks_timeout_seconds=0.2)
    t0 = now_us()
    with receiver([200], hold=True) as hook:
        endpoint = endpoint_with_event(engine, settings, account, hook.url, t0)
        assert run_due(engine, settings, t0) == ["pending"]
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    [attempt] = delivery["attempt_log"]
    assert attempt["outcome"] == "timeout"
    assert attempt["response_code"] is None


def test_another_accounts_endpoints_and_deliveries_are_not_found(engine: sa.Engine) -> None:
    mine, theirs = make_account(engine, "mine"), make_account(engine, "theirs")
    settings = settings_for(engine)
    endpoint = webhooks.create_endpoint(engine, settings, mine, "http://127.0.0.1:9/x")
    with pytest.raises(webhooks.WebhookEndpointNotFoundError):
        webhooks.get_endpoint(engine, theirs, endpoint.id)
    with pytest.raises(webhooks.WebhookEndpointNotFoundError):
        webhooks.delete_endpoint(engine, theirs, endpoint.id)
    with engine.begin() as conn:
        webhooks.record_event(conn, mine, "balance.low", {})
    with engine.connect() as conn:
        delivery_id = conn.execute(sa.select(webhook_deliveries.c.id)).scalar_one()
    with pytest.raises(webhooks.WebhookDeliveryNotFoundError):
        webhooks.redeliver(engine, theirs, delivery_id)
    assert webhooks.list_endpoints(engine, theirs) == []


def _delivered_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(webhook_deliveries.c.state == "delivered")
            ).scalar_one()
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_workers_deliver_every_event_exactly_once(db_url: str, engine: sa.Engine) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    with receiver([200]) as hook:
        webhooks.create_endpoint(engine, settings, account, hook.url, ["balance.low"])
        for n in range(60):
            emit(engine, account, "balance.low", {"n": n})
        env = {"TALKTIME_WEBHOOKS_ALLOW_PRIVATE": "true"}
        workers = [start_worker(db_url, "--poll-seconds", "0.05", **env) for _ in range(2)]
        try:
            wait_for(lambda: _delivered_count(engine) == 60, timeout=120)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            codes = [w.wait(timeout=30) for w in workers]
        ids = hook.ids()
    assert codes == [0, 0]
    assert len(ids) == 60
    assert len(set(ids)) == 60
    with engine.connect() as conn:
        events = sa.select(sa.func.count()).where(webhook_events.c.type == "balance.low")
        assert conn.execute(events).scalar() == 60
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_attempts)).scalar() == 60


@pytest.mark.slow
def test_a_worker_sigkilled_mid_delivery_loses_nothing(db_url: str, engine: sa.Engine) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    env = {"TALKTIME_WEBHOOKS_ALLOW_PRIVATE": "true"}
    hook: Receiver
    with receiver([200], hold=True) as hook:
        endpoint = webhooks.create_endpoint(engine, settings, account, hook.url, ["balance.low"])
        emit(engine, account, "balance.low", {"n": 1})
        first = start_worker(db_url, "--lease-seconds", "1", "--poll-seconds", "0.05", **env)
        try:
            assert hook.arrived.wait(30), "the first worker sent the request"
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert hook.hold is not None
        hook.hold.set()
        second = start_worker(db_url, "--lease-seconds", "1", "--poll-seconds", "0.05", **env)
        try:
            wait_for(lambda: _delivered_count(engine) == 1)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
        ids = hook.ids()
    assert len(ids) == 2, "the interrupted attempt was made again"
    assert len(set(ids)) == 1, "with the same webhook-id, so the receiver dedupes it"
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    assert delivery["state"] == "delivered"
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["ok"]


def test_a_backlog_is_dispatched_in_transactions_of_a_hundred_and_five_hundred_a_tick(
    engine: sa.Engine,
) -> None:
    # 500 events went in one transaction: on SQLite the write lock, which sends wait for, was
    # held 0.3-0.8 s a tick
    account = make_account(engine)
    with engine.begin() as conn:
        conn.execute(
            outbox.insert(),
            [
                {"account_id": account, "type": "balance.low", "payload": {}, "created_at": 1}
                for _ in range(720)
            ],
        )
    commits: list[int] = []

    def count(_conn: sa.Connection) -> None:
        commits.append(1)

    sa.event.listen(engine, "commit", count)
    try:
        assert tasks.dispatch_outbox(engine, "w") == 500
        assert len(commits) == 5
        assert tasks.dispatch_outbox(engine, "w") == 220
        assert tasks.dispatch_outbox(engine, "w") == 0
    finally:
        sa.event.remove(engine, "commit", count)
    with engine.connect() as conn:
        events = conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar()
    assert events == 720
