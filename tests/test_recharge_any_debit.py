"""Auto-recharge starts from any debit that leaves paid credit under the threshold (a charge of
free credit, a batch, a reservation, a settle), and from turning it on while paid credit is
already under it; on SQLite and PostgreSQL. Before, only a debit that took paid credit queued
one: an account whose free credit ran out with no paid credit left was refused forever."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import ChargeItem, InsufficientCreditError, Wallet
from talktime.wallet import recharge as rc
from talktime.wallet.payments import TestProvider
from test_recharge import D, paid_account, process, recharges_of
from wallet_helpers import PLAN, T0, make_wallet


def free_account(wallet: Wallet, paid: int = 0) -> int:
    """An account on the plan with $10 free credit, a saved card and ``paid`` purchased."""
    account = wallet.create_account("acme", PLAN, "create").account.id
    wallet.set_payment_method(account, customer="cus_1", payment_method="pm_1")
    if paid:
        wallet.grant(account, "purchased", paid, "seed")
    return account


def pending(wallet: Wallet, account: int) -> list[int]:
    return [r.sequence for r in recharges_of(wallet, account) if r.state == "pending"]


def armed_account(wallet: Wallet, holds: int = 0) -> tuple[int, list[int]]:
    """An account with $10 free credit and auto-recharge on (under $5, buy $20), its paid
    credit brought from the threshold to 0 by a refund (no debit), with ``holds`` pending
    holds of $1 of free credit made before: nothing queued yet. Returns it and the holds."""
    account = free_account(wallet, paid=5 * D)
    wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=20 * D)
    made = [
        wallet.authorize(account, 1 * D, f"hold-{n}", timedelta(minutes=5)).hold.id
        for n in range(holds)
    ]
    [grant] = [g for g in wallet.grants(account) if g.kind == "purchased"]
    wallet.refund(account, grant.id, 5 * D, "refund")
    assert recharges_of(wallet, account) == []  # 5 was not under 5; a refund is no debit
    return account, made


def test_the_auditors_account_whose_free_credit_ran_out_is_recharged_and_charged_again(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = free_account(wallet)
    wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=20 * D)
    wallet.charge(account, 10 * D, "c1")  # the last of the free credit; no paid credit
    [queued] = recharges_of(wallet, account)
    assert (queued.state, queued.idempotency_key) == ("pending", f"recharge:{account}:1")
    assert process(wallet, TestProvider()) == ["succeeded"]
    assert wallet.charge(account, 1 * D, "c2").from_paid == 1 * D  # no longer refused
    assert wallet.verify() == []


def test_a_charge_of_free_credit_alone_queues_a_recharge_when_paid_credit_is_under_it(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account, _ = armed_account(wallet)
    result = wallet.charge(account, 1 * D, "free")
    assert (result.from_free, result.from_paid) == (1 * D, 0)
    [queued] = recharges_of(wallet, account)
    assert (queued.sequence, queued.state, queued.amount) == (1, "pending", 20 * D)
    assert queued.idempotency_key == f"recharge:{account}:1"


def test_turning_auto_recharge_on_with_paid_credit_under_the_threshold_queues_one_at_once(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 1 * D)
    settings = wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=20 * D)
    assert settings.enabled
    [queued] = recharges_of(wallet, account)
    assert (queued.sequence, queued.amount, queued.next_attempt_at) == (1, 20 * D, T0)
    assert process(wallet, TestProvider()) == ["succeeded"]
    assert wallet.charge(account, 2 * D, "c1").from_paid == 2 * D


def test_turning_auto_recharge_on_queues_nothing_over_the_threshold_or_with_one_in_flight(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 5 * D)
    wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=20 * D)
    assert recharges_of(wallet, account) == []  # 5 is not under 5
    wallet.configure_auto_recharge(account, enabled=True, threshold=6 * D, amount=20 * D)
    wallet.configure_auto_recharge(account, enabled=True, threshold=7 * D, amount=20 * D)
    assert pending(wallet, account) == [1]  # at most one in flight


def test_turning_auto_recharge_off_queues_nothing(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    wallet.configure_auto_recharge(account, enabled=False, threshold=5 * D, amount=20 * D)
    assert recharges_of(wallet, account) == []


def test_turning_auto_recharge_on_queues_nothing_while_the_monthly_limit_is_reached(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 6 * D)
    wallet.set_monthly_limit(account, 3 * D, "limit")
    wallet.charge(account, 3 * D, "c1")
    wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=20 * D)
    assert recharges_of(wallet, account) == []


def test_turning_auto_recharge_on_with_a_refused_amount_queues_nothing(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    with pytest.raises(rc.PaymentSetupError):  # not whole cents: refused, nothing written
        wallet.configure_auto_recharge(account, enabled=True, threshold=5 * D, amount=10_100)
    assert recharges_of(wallet, account) == []


def test_a_refused_charge_queues_nothing_and_changes_nothing(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account, _ = armed_account(wallet)
    before = wallet.balance(account)
    with pytest.raises(InsufficientCreditError):
        wallet.charge(account, 15 * D, "too-much")
    assert recharges_of(wallet, account) == []
    assert wallet.balance(account) == before


@pytest.mark.parametrize("debit", ["batch", "authorize", "extend", "settle"])
def test_every_kind_of_debit_of_free_credit_queues_a_recharge(
    engine: sa.Engine, debit: str
) -> None:
    wallet = make_wallet(engine)
    account, [hold] = armed_account(wallet, holds=1)
    if debit == "batch":
        wallet.charge_batch([ChargeItem(account, 1 * D, "b1"), ChargeItem(account, 1 * D, "b2")])
    elif debit == "authorize":
        wallet.authorize(account, 1 * D, "auth", timedelta(minutes=5))
    elif debit == "extend":
        wallet.extend(hold, 1 * D, "extend")
    else:
        wallet.settle(hold, 1 * D, "settle")
    assert pending(wallet, account) == [1]


def test_a_reservation_of_nothing_a_settle_of_nothing_and_a_void_queue_nothing(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account, [first, second] = armed_account(wallet, holds=2)
    wallet.extend(first, 0, "new-deadline", ttl=timedelta(minutes=10))
    wallet.void(first, "void")
    wallet.settle(second, 0, "settle-nothing")
    assert recharges_of(wallet, account) == []


def test_a_debit_on_an_account_without_auto_recharge_reads_no_recharge_state(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings come with the account's own read: the hot path pays no extra query."""
    wallet = make_wallet(engine)
    account = free_account(wallet, paid=1 * D)

    def no_query(*_: Any) -> None:
        raise AssertionError("a debit without auto-recharge read recharge state")

    monkeypatch.setattr(rc, "in_flight", no_query)
    monkeypatch.setattr(rc, "_settings_row", no_query)
    wallet.charge(account, 1 * D, "c1")
    wallet.charge_batch([ChargeItem(account, 1 * D, "b1")])
    hold = wallet.authorize(account, 1 * D, "auth", timedelta(minutes=5)).hold
    wallet.settle(hold.id, 1 * D, "settle")
    assert wallet.balance(account).available == 8 * D


def test_many_debits_under_the_threshold_leave_one_recharge_paid_once_under_its_key(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account, _ = armed_account(wallet)
    for n in range(5):
        wallet.charge(account, 1 * D, f"c{n}")
    assert pending(wallet, account) == [1]
    provider = TestProvider()
    assert process(wallet, provider) == ["succeeded"]
    assert [r.idempotency_key for r in provider.attempts] == [f"recharge:{account}:1"]
    assert process(wallet, provider, timedelta(minutes=10)) == []
    assert wallet.balance(account).paid == 20 * D
