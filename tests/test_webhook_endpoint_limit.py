"""Concurrent endpoint creations for one account stop at the limit on SQLite and PostgreSQL.

On PostgreSQL the creations counted the account's endpoints and inserted with nothing serialising
them, so 30 at once made more than 20."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import httpx
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.keys import create_key
from talktime.ops import webhooks

from ops_helpers import make_account

N = 30


def test_concurrent_endpoint_creations_never_exceed_the_limit(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url, webhooks_allow_private=True))
    client = TestClient(app, raise_server_exceptions=False)
    engine = app.state.engine
    account = make_account(engine)
    with engine.begin() as conn:
        auth = {"Authorization": f"Bearer {create_key(conn, account).token}"}
    start = Barrier(N)

    def create(n: int) -> httpx.Response:
        start.wait()
        body = {"url": f"http://127.0.0.1:9/hooks/{n}"}
        return client.post("/v1/webhooks/endpoints", json=body, headers=auth)

    with ThreadPoolExecutor(max_workers=N) as pool:
        answers = list(pool.map(create, range(N)))
    codes = sorted(a.status_code for a in answers)
    limit = webhooks.MAX_ENDPOINTS_PER_ACCOUNT
    assert codes == [201] * limit + [409] * (N - limit), [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"webhook_endpoint_limit"}
    assert len(webhooks.list_endpoints(engine, account)) == limit
