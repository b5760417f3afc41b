"""The webhook endpoints API: an account manages its own endpoints only, sees deliveries with their
attempt log and redelivers; URL policy and validation refusals are problem documents."""

from __future__ import annotations

from pathlib import Path

from talktime.ops import webhooks

from ops_helpers import api_client, bearer, make_account


def test_an_account_creates_lists_changes_and_deletes_its_endpoints(db_url: str) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    auth = bearer(engine, account)
    created = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": ["balance.low"]},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["enabled"] is True
    listed = client.get("/v1/webhooks/endpoints", headers=auth).json()
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    patched = client.patch(
        f"/v1/webhooks/endpoints/{body['id']}", json={"enabled": False}, headers=auth
    ).json()
    assert patched["enabled"] is False
    rotated = client.post(f"/v1/webhooks/endpoints/{body['id']}/rotate-secret", headers=auth)
    assert rotated.json()["secret"] != body["secret"]
    assert client.delete(f"/v1/webhooks/endpoints/{body['id']}", headers=auth).status_code == 204
    assert client.get("/v1/webhooks/endpoints", headers=auth).json() == []


def test_a_private_url_is_refused_with_a_problem(db_url: str) -> None:
    client, engine = api_client(db_url)
    auth = bearer(engine, make_account(engine))
    response = client.post(
        "/v1/webhooks/endpoints", json={"url": "http://10.0.0.5/hooks"}, headers=auth
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "webhook_url_not_allowed"
    empty = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://8.8.8.8/x", "event_types": [" "]},
        headers=auth,
    )
    assert empty.json()["code"] == "invalid_event_types"


def test_another_accounts_endpoint_answers_404_everywhere(db_url: str) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    mine, theirs = make_account(engine, "mine"), make_account(engine, "theirs")
    endpoint = webhooks.create_endpoint(
        engine,
        client.app.state.settings,
        mine,
        "http://127.0.0.1:9/x",  # type: ignore[attr-defined]
    )
    with engine.begin() as conn:
        webhooks.record_event(conn, mine, "balance.low", {})
    [delivery] = webhooks.list_deliveries(engine, mine, endpoint.id)
    auth = bearer(engine, theirs)
    base = f"/v1/webhooks/endpoints/{endpoint.id}"
    answers = [
        client.get(base, headers=auth),
        client.patch(base, json={"enabled": True}, headers=auth),
        client.post(f"{base}/rotate-secret", headers=auth),
        client.delete(base, headers=auth),
        client.get(f"{base}/deliveries", headers=auth),
        client.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=auth),
    ]
    assert [a.status_code for a in answers] == [404] * 6
    assert client.get("/v1/webhooks/endpoints", headers=auth).json() == []
    assert client.get(base).status_code == 401


def test_deliveries_show_the_attempt_log_and_can_be_redelivered(db_url: str) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    auth = bearer(engine, account)
    endpoint = client.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=auth
    ).json()
    with engine.begin() as conn:
        webhooks.record_event(conn, account, "balance.low", {"x": 1})
    [pending] = client.get(
        f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=auth
    ).json()
    assert pending["state"] == "pending"
    assert pending["event_type"] == "balance.low"
    assert pending["attempt_log"] == []
    # nothing listens on port 9: one attempt fails with a network error, then redeliver
    settings = client.app.state.settings  # type: ignore[attr-defined]
    assert webhooks.deliver(engine, settings, pending["id"]) == "pending"
    [after] = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=auth).json()
    assert [a["outcome"] for a in after["attempt_log"]] == ["network_error"]
    redo = client.post(f"/v1/webhooks/deliveries/{pending['id']}/redeliver", headers=auth)
    assert redo.status_code == 202


def test_the_openapi_schema_lists_the_webhook_routes(tmp_path: Path) -> None:
    client, _ = api_client(f"sqlite:///{tmp_path / 'x.db'}")
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/webhooks/endpoints" in paths
    assert "/v1/webhooks/deliveries/{delivery_id}/redeliver" in paths
