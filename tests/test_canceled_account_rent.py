"""A canceled subscription pays no more rent: the cycle suspends its numbers instead (with the
reason `subscription_canceled` and a `number.suspended` event); a past-due account still pays."""

from __future__ import annotations

import sqlalchemy as sa

from talktime.wallet import Wallet, rentals
from talktime.wallet.cycle import SUBSCRIPTION_CANCELED, run_cycle
from wallet_helpers import PLAN, make_wallet, number_status, rent, utc

D = 1_000_000


def _with_number(engine: sa.Engine, plan: str, *, paid: int) -> tuple[Wallet, int, int]:
    """A wallet, an account on ``plan`` with ``paid`` purchased credit, and the id of a number
    it rents at 2.00 a month."""
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", plan, "create").account.id
    wallet.grant(account, "purchased", paid, "buy")
    return wallet, account, rent(engine, account, "+14155550100", 2 * D)


def test_a_canceled_account_pays_no_rent_and_its_numbers_are_suspended(
    engine: sa.Engine,
) -> None:
    wallet, account, number = _with_number(engine, PLAN, paid=20 * D)
    wallet.set_status(account, "canceled", "cancel")
    paid_before = wallet.balance(account).paid

    [april] = run_cycle(engine, utc(2026, 4, 1))

    assert april.rentals_charged == 0
    assert april.numbers_suspended == ("+14155550100",)
    assert number_status(engine, account, number) == "suspended"
    assert wallet.balance(account, utc(2026, 4, 1)).paid == paid_before
    assert [e.reference for e in wallet.ledger(account, kind="usage").entries] == []
    [event] = wallet.events(account, "number.suspended")
    assert event["payload"]["reason"] == SUBSCRIPTION_CANCELED
    assert event["payload"]["number"] == "+14155550100"
    assert event["payload"]["period_start"] == "2026-04-01T00:00:00+00:00"
    # The next month neither charges nor announces it again.
    [may] = run_cycle(engine, utc(2026, 5, 1))
    assert (may.rentals_charged, may.numbers_suspended) == (0, ())
    assert len(wallet.events(account, "number.suspended")) == 1
    assert wallet.verify(utc(2026, 5, 1)) == []
    # Reactivating the account does not bring the number back (release it and add it again).
    wallet.set_status(account, "active", "reactivate", now=utc(2026, 5, 2))
    assert number_status(engine, account, number) == "suspended"


def test_a_past_due_account_still_pays_its_rent(engine: sa.Engine) -> None:
    wallet, account, number = _with_number(engine, "free", paid=5 * D)
    wallet.set_status(account, "past_due", "late")

    [april] = run_cycle(engine, utc(2026, 4, 1))

    assert (april.rentals_charged, april.numbers_suspended) == (2 * D, ())
    assert number_status(engine, account, number) == "active"
    assert wallet.balance(account, utc(2026, 4, 1)).paid == 3 * D


def test_a_late_cycle_charges_the_months_before_the_cancellation_and_none_after(
    engine: sa.Engine,
) -> None:
    wallet, account, number = _with_number(engine, "free", paid=10 * D)
    # Canceled on 15 May while the cycle was down since March: April and May began active.
    wallet.set_status(account, "canceled", "cancel", now=utc(2026, 5, 15))

    runs = run_cycle(engine, utc(2026, 6, 2))

    # The cancellation opened April and May first (as they began: active, rent paid).
    assert [(r.period_start, r.rentals_charged, r.numbers_suspended) for r in runs] == [
        (utc(2026, 6, 1), 0, ("+14155550100",)),
    ]
    assert number_status(engine, account, number) == "suspended"
    references = [e.reference for e in wallet.ledger(account, kind="usage").entries]
    assert references == ["number:+14155550100", "number:+14155550100"]  # April and May
    assert wallet.balance(account, utc(2026, 6, 2)).paid == 6 * D
    assert wallet.verify(utc(2026, 6, 2)) == []


def test_a_number_released_before_a_canceled_period_is_neither_charged_nor_announced(
    engine: sa.Engine,
) -> None:
    wallet, account, number = _with_number(engine, "free", paid=10 * D)
    wallet.set_status(account, "canceled", "cancel")
    with engine.begin() as conn:  # released on 2 April, before the late cycle ran
        rentals.release_number(conn, account, number, now=int(utc(2026, 4, 2).timestamp() * D))

    [april] = run_cycle(engine, utc(2026, 4, 3))

    assert (april.rentals_charged, april.numbers_suspended) == (0, ())
    assert number_status(engine, account, number) == "released"
    assert wallet.events(account, "number.suspended") == []
    assert wallet.balance(account, utc(2026, 4, 3)).paid == 10 * D
