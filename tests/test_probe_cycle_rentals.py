"""Probe of the monthly cycle's rentals: a number released after its period began, before the
cycle ran, owes that period's rent (as it would had the cycle run on time)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from talktime.wallet import rentals
from talktime.wallet.cycle import run_cycle
from talktime.wallet.periods import to_micros
from wallet_helpers import PLAN, make_wallet, rent, utc

D = 1_000_000


def release(engine: sa.Engine, account: int, number_id: int, at: datetime) -> None:
    with engine.begin() as conn:
        rentals.release_number(conn, account, number_id, now=to_micros(at))


def test_a_number_released_after_its_period_began_but_before_the_cycle_ran_owes_that_period(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    late = rent(engine, account, "+14155550100", 1 * D)
    early = rent(engine, account, "+14155550101", 2 * D)
    release(engine, account, early, utc(2026, 4, 1))  # at the boundary: held for none of April
    release(engine, account, late, utc(2026, 4, 1, 0, 2))  # two minutes into April
    [april] = run_cycle(engine, utc(2026, 4, 1, 0, 5))  # the worker's next slot
    assert april.rentals_charged == 1 * D
    [charge] = wallet.ledger(account, kind="usage").entries
    assert (charge.reference, charge.amount) == ("number:+14155550100", -1 * D)
    [may] = run_cycle(engine, utc(2026, 5, 1))
    assert may.rentals_charged == 0
    assert wallet.verify(utc(2026, 5, 1)) == []


def test_after_downtime_a_number_released_meanwhile_owes_each_period_it_was_held_into(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    number = rent(engine, account, "+14155550100", 1 * D)
    release(engine, account, number, utc(2026, 5, 10))
    runs = run_cycle(engine, utc(2026, 6, 15))
    assert [(r.period_start, r.rentals_charged) for r in runs] == [
        (utc(2026, 4, 1), 1 * D),
        (utc(2026, 5, 1), 1 * D),
        (utc(2026, 6, 1), 0),
    ]
    assert wallet.verify(utc(2026, 6, 15)) == []


def test_a_released_number_whose_late_rent_is_not_covered_is_not_suspended_or_announced(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    number = rent(engine, account, "+14155550100", 1 * D)
    release(engine, account, number, utc(2026, 4, 1, 0, 2))
    [april] = run_cycle(engine, utc(2026, 4, 1, 0, 5))
    assert (april.rentals_charged, april.numbers_suspended) == (0, ())
    with engine.connect() as conn:
        assert rentals.get_number(conn, account, number).status == "released"
    assert wallet.events(account, "number.suspended") == []
    assert wallet.balance(account, utc(2026, 4, 2)).available == 0
    assert wallet.verify(utc(2026, 4, 2)) == []


def test_a_suspended_number_released_after_the_next_period_began_owes_nothing_for_it(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    number = rent(engine, account, "+14155550100", 1 * D)
    [april] = run_cycle(engine, utc(2026, 4, 1))
    assert april.numbers_suspended == ("+14155550100",)
    wallet.grant(account, "purchased", 5 * D, "buy", now=utc(2026, 4, 10))
    release(engine, account, number, utc(2026, 5, 1, 0, 2))
    [may] = run_cycle(engine, utc(2026, 5, 1, 0, 5))
    assert may.rentals_charged == 0
    assert wallet.balance(account, utc(2026, 5, 2)).paid == 5 * D
    assert wallet.verify(utc(2026, 5, 2)) == []


def test_after_downtime_a_released_number_whose_rent_was_not_covered_owes_no_later_period(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    number = rent(engine, account, "+14155550100", 1 * D)
    wallet.grant(account, "purchased", 5 * D, "buy", now=utc(2026, 4, 10))  # after April began
    release(engine, account, number, utc(2026, 5, 10))
    runs = run_cycle(engine, utc(2026, 6, 15))
    # April's rent was not covered (the credit came later): on time, the number would have
    # been suspended then and never charged again; so May is not charged either.
    assert [(r.rentals_charged, r.numbers_suspended) for r in runs] == [(0, ()), (0, ()), (0, ())]
    assert wallet.balance(account, utc(2026, 6, 15)).paid == 5 * D
    assert wallet.events(account, "number.suspended") == []
    assert wallet.verify(utc(2026, 6, 15)) == []
