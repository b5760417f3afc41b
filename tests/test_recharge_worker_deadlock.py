"""Two recharge workers on PostgreSQL: a claim retaking a lease that ran out meets the record of
the worker that held it while a charge holds the account. The claim locks the recharge, then
the account; the record the account, then the recharge: PostgreSQL made one of them a deadlock's
victim, and `process_recharges` raised the raw driver error. The victim now runs again."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import Wallet
from talktime.wallet.payments import PaymentRequest, PaymentResult, TestProvider

A = datetime(2026, 3, 1, tzinfo=UTC)
T = datetime(2026, 3, 10, tzinfo=UTC)


def test_a_claim_and_a_record_that_deadlock_are_run_again_and_pay_once(
    engine: sa.Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite takes one write lock at BEGIN, so the two never interleave")
    wallet = Wallet(engine)
    wallet.upsert_plan("p", 0, now=A)
    account = wallet.create_account("A", "p", key="a", now=A, anchor=A).account.id
    wallet.grant(account, "purchased", 1_000_000, key="g", now=A)
    wallet.set_payment_method(account, customer="cus", payment_method="pm", now=A)
    wallet.configure_auto_recharge(  # paid credit under the threshold: queues one at once
        account, enabled=True, threshold=5_000_000, amount=10_000_000, now=T
    )
    charge = engine.connect()  # stands for a charge holding the account's lock
    paid = threading.Event()

    class Provider(TestProvider):
        def charge(self, request: PaymentRequest) -> PaymentResult:
            result = super().charge(request)
            if not paid.is_set():
                charge.begin()
                charge.execute(
                    sa.text("SELECT id FROM accounts WHERE id = :a FOR UPDATE"), {"a": account}
                )
                paid.set()
            return result

    provider = Provider()
    outcomes: dict[str, Any] = {}

    def work(name: str, now: datetime) -> None:
        try:
            outcomes[name] = [o.outcome for o in wallet.process_recharges(provider, now=now)]
        except Exception as exc:  # the bug: a raw DeadlockDetected
            outcomes[name] = exc

    first = threading.Thread(target=work, args=("first", T))
    first.start()
    assert paid.wait(10)
    time.sleep(0.5)  # the first worker now waits for the account in its record
    late = threading.Thread(target=work, args=("late", T + timedelta(minutes=6)))
    late.start()
    time.sleep(0.5)  # the late worker's claim holds the recharge and waits for the account
    charge.commit()
    first.join(20)
    late.join(20)
    charge.close()
    assert not isinstance(outcomes["first"], Exception), outcomes
    assert not isinstance(outcomes["late"], Exception), outcomes
    assert [r.idempotency_key for r in provider.attempts] == [f"recharge:{account}:1"]
    assert wallet.balance(account, now=T).paid == 11_000_000
    assert wallet.verify(now=T + timedelta(minutes=7)) == []
