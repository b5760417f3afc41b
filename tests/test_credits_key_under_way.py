"""A purchase takes its Idempotency-Key before it pays: while the payment is under way, or
after a provider error left it unfinished (the money may have been taken), a send, a call or
another purchase under that key is 409 `idempotency_conflict`, and the purchase's own retry
finishes it. Until 1 Dec the unfinished purchase left no trace where the other routes look,
so a send took the key and the purchase's retry was refused for ever: the money taken never
became credit. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from talktime.service import credits, idempotency
from talktime.wallet.payments import PaymentRequest, PaymentResult, TestProvider

import apikit
from live import serve


class _LostAnswer(TestProvider):
    """Takes the money, but the first answer is lost (reported as a provider error)."""

    lost = True

    def charge(self, request: PaymentRequest) -> PaymentResult:
        result = super().charge(request)
        if self.lost:
            self.lost = False
            return PaymentResult(outcome="error", reason="timeout")
        return result


def _tenant_paying_with(
    provider: TestProvider, paying: Any, monkeypatch: pytest.MonkeyPatch
) -> apikit.Tenant:
    """A tenant with $5.00 of credit whose purchases go to ``provider``."""
    monkeypatch.setattr(credits, "provider_from_settings", lambda settings: provider)
    return apikit.tenant(paying, credit="5.00")


def test_a_send_under_the_key_of_an_unfinished_purchase_is_refused_and_the_retry_credits(
    paying: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _LostAnswer()
    t = _tenant_paying_with(provider, paying, monkeypatch)
    first = t.post("/v1/credits", {"amount": "10.00"}, key="K")
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "payment_unavailable"
    assert provider.paid == 10_000_000  # taken, though the answer was lost
    # it said "no credit was added" and nothing of the card: an operator then granted the
    # credit by hand, and the client's retry under the key granted it again
    assert (
        "the card may have been charged; retry with the same idempotency key"
        in (first.json()["detail"])
    )
    assert first.json()["account_id"] == t.account_id  # in the operator's log line too
    assert first.json()["payment_key"].startswith("purchase:")
    sent = t.sms("+14155550111", "hi", key="K")
    assert sent.status_code == 409, sent.text
    assert sent.json()["code"] == "idempotency_conflict"
    call = t.authorize(key="K")
    assert call.status_code == 409, call.text
    retried = t.post("/v1/credits", {"amount": "10.00"}, key="K")
    assert retried.status_code == 201, retried.text
    assert provider.paid == 10_000_000  # the same payment, not a second one
    assert t.balance()["paid"] == "15.0000"
    replay = t.post("/v1/credits", {"amount": "10.00"}, key="K")
    assert (replay.status_code, replay.content) == (201, retried.content)
    after = t.sms("+14155550111", "hi", key="K")
    assert after.status_code == 409, after.text  # the key answered the purchase


def test_a_declined_purchase_frees_its_key_for_any_request(
    paying: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = TestProvider()
    t = _tenant_paying_with(provider, paying, monkeypatch)
    provider.decline(t.account_id)
    declined = t.post("/v1/credits", {"amount": "10.00"}, key="D")
    assert declined.status_code == 402, declined.text
    sent = t.sms("+14155550111", "hi", key="D")
    assert sent.status_code == 201, sent.text


def test_a_purchase_whose_key_a_send_answered_meanwhile_is_409_not_500(
    paying: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a send under the key stored its answer between the purchase's lookup and its start:
    # taking the key failed twice on the unique row and answered 500
    provider = TestProvider()
    t = _tenant_paying_with(provider, paying, monkeypatch)
    engine = paying.app.state.engine
    checks = credits._require_payable

    def a_send_answers_meanwhile(*args: Any, **kwargs: Any) -> None:
        checks(*args, **kwargs)
        with engine.begin() as conn:
            idempotency.remember(
                conn, t.account_id, "K", "messages.send", "x", idempotency.StoredResponse(201, "{}")
            )

    monkeypatch.setattr(credits, "_require_payable", a_send_answers_meanwhile)
    raced = t.post("/v1/credits", {"amount": "10.00"}, key="K")
    assert raced.status_code == 409, raced.text
    assert raced.json()["code"] == "idempotency_conflict"
    assert provider.paid == 0


def test_another_amount_under_an_unfinished_purchases_key_is_refused_and_the_retry_credits(
    paying: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _LostAnswer()
    t = _tenant_paying_with(provider, paying, monkeypatch)
    assert t.post("/v1/credits", {"amount": "10.00"}, key="K").status_code == 503
    other = t.post("/v1/credits", {"amount": "20.00"}, key="K")
    assert other.status_code == 409, other.text
    apikit.set_status(paying, t.account_id, "past_due")
    retried = t.post("/v1/credits", {"amount": "10.00"}, key="K")  # the money was taken
    assert retried.status_code == 201, retried.text
    assert provider.paid == 10_000_000
    assert t.balance()["paid"] == "15.0000"


def test_simultaneous_purchases_under_one_key_all_answer_201_with_one_grant(
    db_url: str, tmp_path: Path
) -> None:
    # three or more twins at once: the second's retry of taking the key failed again (500),
    # and deleting and re-inserting the placeholder deadlocked them on PostgreSQL (503)
    env = {
        "TALKTIME_ADMIN_KEY": apikit.ADMIN_KEY,
        "TALKTIME_RATE_CARDS_DIR": str(tmp_path / "cards"),
        "TALKTIME_PAYMENT_PROVIDER": "test",
        "TALKTIME_LOG_LEVEL": "WARNING",
    }
    with (
        serve(db_url, **env) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        t = apikit.tenant(http, number=None)
        statuses: Counter[int] = Counter()
        for round_ in range(6):
            key = f"twin-{round_}"

            def buy(_: int, key: str = key) -> httpx.Response:
                with httpx.Client(base_url=server.base_url, timeout=60) as own:
                    return own.post(
                        "/v1/credits",
                        json={"amount": "1.00"},
                        headers={**t.auth, "Idempotency-Key": key},
                    )

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(buy, range(8)))
            statuses.update(a.status_code for a in answers)
            assert len({a.json()["grant_id"] for a in answers if a.status_code == 201}) == 1
        assert statuses == Counter({201: 48}), statuses
        assert t.balance()["paid"] == "6.0000"
