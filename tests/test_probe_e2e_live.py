"""A real `talktime serve --workers 2` (two processes, a group committer each) under concurrent
sends on shared accounts, each sent twice at once, with refusals and admin account changes
(a transaction per request) mixed in: every key is charged at most once and its duplicates
answer the same bytes, nothing answers 5xx or idempotency_conflict, and the wallet verifies."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import apikit
from apikit import ADMIN, ADMIN_KEY, tenant
from live import serve

pytestmark = pytest.mark.skipif(
    os.environ.get("TALKTIME_SOAK", "") == "",
    reason="a 25 s two-worker soak: set TALKTIME_SOAK=1 (the deterministic guards of the same "
    "bugs are in test_probe_e2e_groupcommit.py and run always)",
)


def test_two_workers_answer_raced_duplicate_sends_once_and_never_fail(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    env = {
        "TALKTIME_ADMIN_KEY": ADMIN_KEY,
        "TALKTIME_RATE_CARDS_DIR": str(tmp_path / "cards"),
        "TALKTIME_LOG_LEVEL": "WARNING",
        "TALKTIME_WORKERS": "2",
    }
    with serve(db_url, **env) as server, httpx.Client(base_url=server.base_url) as http:
        apikit.import_tiny_card(http)
        accounts = [  # $0.20 each once the number is paid: 20 sends
            tenant(http, plan="trial", rate_card="tiny", credit="1.20", number=f"+1415555010{n}")
            for n in range(4)
        ]

        clients = threading.local()

        def send(i: int) -> tuple[int, int, bytes]:
            t = accounts[i % 4]
            if not hasattr(clients, "client"):
                clients.client = httpx.Client(base_url=server.base_url, timeout=60)
            body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
            if i % 7 == 3:
                body["user"] = "usr_nobody"  # refused inside the batch
            client: httpx.Client = clients.client
            if i < 0:  # an admin change: its own transaction, locking the account
                r = client.patch(
                    f"/v1/admin/accounts/{accounts[-i % 4].account_id}",
                    json={"status": "active"},
                    headers={**ADMIN, **apikit.idem()},
                )
            else:
                headers = {**t.auth, "Idempotency-Key": f"k{i}"}
                r = client.post("/v1/messages", json=body, headers=headers)
            return i, r.status_code, r.content

        jobs = [i for i in range(120) for _ in range(2)] + [-i for i in range(1, 21)]
        jobs.sort(key=lambda i: abs(i) * 2 + (i < 0))
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(send, jobs))
        statuses = Counter((status, i < 0) for i, status, _ in answers)
        assert {s for s, _ in statuses} <= {200, 201, 402, 422}, statuses
        charged = {i for i, status, _ in answers if status == 201}
        for i in charged:  # both duplicates got the one answer
            assert len({(s, c) for j, s, c in answers if j == i}) == 1, i
        for n, t in enumerate(accounts):
            usage = [e for e in t.ledger(kind="usage") if e["reference"].startswith("msg_")]
            assert len(usage) == len([i for i in charged if i % 4 == n]) == 20
    environ = {
        **os.environ,
        "TALKTIME_DATABASE_URL": db_url,
        "TALKTIME_CONFIG": "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "talktime", "verify"], env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
