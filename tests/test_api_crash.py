"""Durability of group-committed charges: every send-SMS the API acknowledged (201) before a
SIGKILL of `talktime serve` is in the database afterwards, with its exact stored response."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from talktime.store import make_engine
from talktime.store.api_tables import api_requests, messages

from apikit import ADMIN_KEY, tenant
from live import serve


def test_acknowledged_sends_survive_a_sigkill_of_the_server(db_url: str, tmp_path: Path) -> None:
    env = {
        "TALKTIME_ADMIN_KEY": ADMIN_KEY,
        "TALKTIME_RATE_CARDS_DIR": str(tmp_path / "cards"),
        "TALKTIME_LOG_LEVEL": "WARNING",
    }
    acknowledged: dict[str, str] = {}  # Idempotency-Key -> response text
    enough, stop = threading.Event(), threading.Event()
    keys = itertools.count()
    lock = threading.Lock()
    with (
        serve(db_url, **env) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        t = tenant(http, plan="business", credit="100.00")
        body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}

        def sender() -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                while not stop.is_set():
                    key = f"crash-{next(keys)}"
                    try:
                        response = client.post(
                            "/v1/messages", json=body, headers={**t.auth, "Idempotency-Key": key}
                        )
                    except httpx.TransportError:
                        return  # the server is gone: this one was never acknowledged
                    assert response.status_code == 201, response.text
                    with lock:
                        acknowledged[key] = response.text
                        if len(acknowledged) >= 60:
                            enough.set()

        with ThreadPoolExecutor(max_workers=16) as pool:
            senders = [pool.submit(sender) for _ in range(16)]
            assert enough.wait(120)
            server.process.kill()  # SIGKILL, mid-burst
            server.process.wait()
            stop.set()
            for done in senders:
                done.result()

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = dict(
                conn.execute(
                    sa.select(api_requests.c.key, api_requests.c.response).where(
                        api_requests.c.account_id == t.account_id,
                        api_requests.c.key.like("crash-%"),
                    )
                ).all()
            )
            ids = set(
                conn.execute(
                    sa.select(messages.c.id).where(messages.c.account_id == t.account_id)
                ).scalars()
            )
    finally:
        engine.dispose()
    for key, text in acknowledged.items():
        assert stored.get(key) == text, f"acknowledged {key} was lost"
        assert json.loads(text)["id"] in ids


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
