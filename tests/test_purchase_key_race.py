"""Two purchases of different amounts racing under one key, on SQLite and PostgreSQL: the
provider took one payment (its replay answered the other), and the grant went to whichever
request recorded first, so $10 could be paid and $1 granted. The key is now tied to its
request before the payment: the other amount is `idempotency_conflict` at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from talktime.wallet import IdempotencyConflictError, Wallet
from talktime.wallet.payments import PaymentRequest, PaymentResult, TestProvider

A = datetime(2026, 3, 1, tzinfo=UTC)
D = 1_000_000


def _account(wallet: Wallet) -> int:
    wallet.upsert_plan("p", 0, now=A)
    account = wallet.create_account("A", "p", key="a", now=A, anchor=A).account.id
    wallet.set_payment_method(account, customer="cus", payment_method="pm", now=A)
    return account


def test_another_amount_under_a_key_whose_payment_is_under_way_is_refused_before_paying(
    engine: sa.Engine,
) -> None:
    wallet = Wallet(engine)
    account = _account(wallet)
    paying, release = threading.Event(), threading.Event()

    class Slow(TestProvider):
        def charge(self, request: PaymentRequest) -> PaymentResult:
            paying.set()
            assert release.wait(10)
            return super().charge(request)

    provider = Slow()
    outcome: list[object] = []
    first = threading.Thread(
        target=lambda: outcome.append(wallet.purchase(account, 10 * D, "order-1", provider, now=A))
    )
    first.start()
    assert paying.wait(10)
    with pytest.raises(IdempotencyConflictError):
        wallet.purchase(account, 1 * D, "order-1", TestProvider(), now=A)
    release.set()
    first.join(10)
    assert [r.amount for r in provider.attempts] == [10 * D]
    assert wallet.balance(account, now=A).paid == 10 * D
    again = wallet.purchase(account, 10 * D, "order-1", provider, now=A)
    assert again.replayed
    assert wallet.verify(now=A) == []


def test_a_declined_purchase_leaves_its_key_free_for_another_amount(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    account = _account(wallet)
    declining = TestProvider(decline_amounts={10 * D})
    with pytest.raises(Exception, match="declined"):
        wallet.purchase(account, 10 * D, "order-2", declining, now=A)
    granted = wallet.purchase(account, 5 * D, "order-2", declining, now=A)
    assert granted.grant.original == 5 * D
    assert wallet.balance(account, now=A).paid == 5 * D
