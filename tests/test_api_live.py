"""End to end through a real `talktime serve` (uvicorn on a loopback port, real HTTP): every
seed rule as a scenario, and 50 concurrent sends against credit for 20; on both backends."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import apikit
from apikit import ADMIN_KEY, tenant
from live import serve


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "TALKTIME_ADMIN_KEY": ADMIN_KEY,
        "TALKTIME_RATE_CARDS_DIR": str(tmp_path / "cards"),
        "TALKTIME_LOG_LEVEL": "WARNING",
        **more,
    }


def test_every_seed_rule_end_to_end(db_url: str, tmp_path: Path) -> None:
    with (
        serve(db_url, **_env(tmp_path)) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        apikit.import_tiny_card(http)

        # send an SMS: one segment at $0.01, from the free monthly credit first
        t = tenant(http, credit="5.00")
        sent = t.sms("+14155550111", "Your code is 1234")
        assert sent.status_code == 201, sent.text
        assert (sent.json()["segments"], sent.json()["amount"]) == (1, "0.0100")
        assert (sent.json()["from_free"], sent.json()["balance"]["paid"]) == ("0.0100", "5.0000")
        # special characters: 70 per segment (67 when split)
        emoji = t.sms("+14155550111", "ж" * 71).json()
        assert (emoji["encoding"], emoji["segments"]) == ("UCS-2", 2)

        # refused when credit is short, and nothing is debited
        poor = tenant(http, plan="trial", rate_card="tiny", credit="1.01", number="+14155550188")
        ledger = poor.ledger()
        short = poor.sms("+14155550111", "x" * 200)  # 2 segments, $0.02 > $0.01
        assert (short.status_code, short.json()["code"]) == (402, "insufficient_credit")
        assert poor.ledger() == ledger

        # US <-> CA allowed; other countries refused; MMS refused
        assert t.sms("+16135550123").status_code == 201
        assert t.sms("+447400123456").json()["code"] == "sms_cross_country"
        assert t.sms("+14155550111", media=["https://x.test/a.png"]).json()["code"] == (
            "mms_not_supported"
        )

        # a forwarded call is billed as two legs
        call = t.post(
            "/v1/calls",
            {"direction": "inbound", "from": "+14155550111", "to": t.number, "user": t.user},
        ).json()
        done = t.post(
            f"/v1/calls/{call['id']}/complete",
            {"duration": 70, "forward": {"to": "+14155550122", "duration": 70}},
        ).json()
        assert len(done["lines"]) == 2
        assert done["amount"] == "0.0430"  # in: 2 x 0.0085 = 0.017; out: 2 x 0.013 = 0.026

        # a transferred call: original + outbound by the transferrer + answered by the user
        call = t.post(
            "/v1/calls",
            {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user},
        ).json()
        done = t.post(
            f"/v1/calls/{call['id']}/complete",
            {
                "duration": 30,
                "transfers": [
                    {
                        "kind": "user",
                        "to": "+14155550133",
                        "outbound_duration": 5,
                        "inbound_duration": 60,
                    }
                ],
            },
        ).json()
        assert len(done["lines"]) == 3

        # a restricted user is refused
        http.patch(f"/v1/users/{t.user}", json={"restrictions": ["sms.send"]}, headers=t.auth)
        assert t.sms("+14155550111").json()["code"] == "permission_denied"

        # an inactive subscription is refused
        apikit.set_status(http, poor.account_id, "canceled")
        inactive = poor.sms("+14155550111")
        assert (inactive.status_code, inactive.json()["code"]) == (403, "subscription_inactive")

        # every refusal and error carries the request id it answers
        assert inactive.json()["request_id"] == inactive.headers["x-request-id"]


@pytest.mark.parametrize(
    "group_commit", ["false", "true"], ids=["commit_per_request", "group_commit"]
)
def test_50_concurrent_sends_against_credit_for_20(
    db_url: str, tmp_path: Path, group_commit: str
) -> None:
    env = {**_env(tmp_path), "TALKTIME_GROUP_COMMIT": group_commit}
    with (
        serve(db_url, **env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        apikit.import_tiny_card(http)
        t = tenant(http, plan="trial", rate_card="tiny", credit="1.20")  # $0.20 after number
        body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}

        def send(i: int) -> int:
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                response = client.post(
                    "/v1/messages",
                    json=body,
                    headers={**t.auth, "Idempotency-Key": f"burst-{i}"},
                )
                if response.status_code == 402:
                    assert response.json()["code"] == "insufficient_credit"
                return response.status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = Counter(pool.map(send, range(50)))
        assert statuses == {201: 20, 402: 30}
        usage = [e for e in t.ledger(kind="usage") if (e["reference"] or "").startswith("msg_")]
        assert len(usage) == 20
        assert sum(-int(e["amount"].replace(".", "")) for e in usage) == 20 * 100
        assert t.balance()["available"] == "0.0000"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
