"""The deliveries of an endpoint page on with `before`, so every delivery a disabled endpoint
missed can be found and redelivered, not only the newest 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from talktime.ops import webhooks

from ops_helpers import api_client, bearer, make_account, settings_for


def _deliveries(client: TestClient, base: str, auth: dict[str, str], query: str) -> list[int]:
    response = client.get(f"{base}/deliveries{query}", headers=auth)
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()]


def test_every_delivery_is_listed_page_by_page_with_before(db_url: str) -> None:
    client, engine = api_client(db_url, webhooks_allow_private=True)
    account = make_account(engine)
    other = make_account(engine, "other")
    auth = bearer(engine, account)
    created = client.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hooks"}, headers=auth
    ).json()
    webhooks.create_endpoint(engine, settings_for(engine), other, "http://127.0.0.1:9/other")
    with engine.begin() as conn:
        for n in range(7):
            webhooks.record_event(conn, account, "balance.low", {"n": n})
            webhooks.record_event(conn, other, "balance.low", {"n": n})
    base = f"/v1/webhooks/endpoints/{created['id']}"
    everything = _deliveries(client, base, auth, "?limit=500")
    assert len(everything) == 7
    pages: list[int] = []
    query = "?limit=3"
    for _ in range(5):  # 3 + 3 + 1, then an empty page
        page = _deliveries(client, base, auth, query)
        if not page:
            break
        pages += page
        query = f"?limit=3&before={page[-1]}"
    assert pages == everything, "newest first, each once, none of another account's"
    assert _deliveries(client, base, auth, f"?before={everything[-1]}") == []
    for bad in ("?before=0", "?before=x", f"?before={2**63}"):
        response = client.get(f"{base}/deliveries{bad}", headers=auth)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"
