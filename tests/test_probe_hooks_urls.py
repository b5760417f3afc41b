"""A webhook URL the sender cannot parse is refused when it is given, not accepted and then
crashing every delivery job (no attempt logged, the delivery pending for ever)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.keys import create_key
from talktime.ops import webhooks
from talktime.ops.clock import now_us
from talktime.ops.urlpolicy import WebhookUrlNotAllowedError, check_url
from talktime.store.ops_tables import webhook_endpoints

from ops_helpers import make_account

UNSENDABLE = [
    "http://127.0.0.1:9/hooks\x7f",
    "http://127.0.0.1:9\n/hooks",
    "http://127.0.0.1:9/ho\toks",
    "http://0177.0.0.1:9/hooks",  # resolves, but httpx refuses the octal form
]


@pytest.mark.parametrize("url", UNSENDABLE)
def test_a_url_httpx_cannot_send_to_is_refused_even_when_private_targets_are_allowed(
    url: str,
) -> None:
    with pytest.raises(WebhookUrlNotAllowedError, match="not a valid URL"):
        check_url(url, allow_private=True)


def test_creating_or_changing_an_endpoint_to_an_unsendable_url_is_a_422_that_changes_nothing(
    db_url: str,
) -> None:
    app = create_app(Settings(database_url=db_url, webhooks_allow_private=True))  # type: ignore[call-arg]
    client = TestClient(app, raise_server_exceptions=False)
    engine = app.state.engine
    account = make_account(engine)
    with engine.begin() as conn:
        auth = {"Authorization": f"Bearer {create_key(conn, account).token}"}
    good = "http://127.0.0.1:9/hooks"
    created = client.post("/v1/webhooks/endpoints", json={"url": good}, headers=auth)
    assert created.status_code == 201
    for url in UNSENDABLE:
        refused = client.post("/v1/webhooks/endpoints", json={"url": url}, headers=auth)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "webhook_url_not_allowed"
        patched = client.patch(
            f"/v1/webhooks/endpoints/{created.json()['id']}", json={"url": url}, headers=auth
        )
        assert patched.status_code == 422
    assert [e["url"] for e in client.get("/v1/webhooks/endpoints", headers=auth).json()] == [good]


def test_a_stored_unsendable_url_gives_a_blocked_attempt_not_a_crashed_job(
    engine: sa.Engine,
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, webhooks_allow_private=True)  # type: ignore[call-arg]
    account = make_account(engine)
    endpoint = webhooks.create_endpoint(engine, settings, account, "http://127.0.0.1:9/hooks")
    with engine.begin() as conn:  # as an older version accepted it
        conn.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint.id)
            .values(url="http://127.0.0.1:9/hooks\x7f")
        )
        webhooks.record_event(conn, account, "balance.low", {})
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    assert webhooks.deliver(engine, settings, delivery["id"], now=now_us()) == "pending"
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    [attempt] = delivery["attempt_log"]
    assert attempt["outcome"] == "blocked"
    assert "not a valid URL" in attempt["error"]
