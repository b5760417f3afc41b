"""The embedded `rent_number`: its first month's ledger line and its replay, found by probing;
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from talktime.wallet import Wallet
from talktime.wallet import rentals as rn
from talktime.wallet.cycle import run_cycle
from talktime.wallet.periods import to_micros
from wallet_helpers import PLAN, T0

D = 1_000_000


class Clock:
    """A clock that moves on only when told to."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> Any:
        return self.now


def _wallet(engine: sa.Engine) -> tuple[Wallet, Clock, int]:
    clock = Clock()
    wallet = Wallet(engine, clock=clock)
    wallet.upsert_plan(PLAN, 10 * D)
    return wallet, clock, wallet.create_account("acme", PLAN, "c").account.id


def _rent(wallet: Wallet, account: int, key: str) -> tuple[rn.PhoneNumber, Any]:
    with wallet.book() as book:
        return rn.rent_number(
            book,
            account,
            "+61412345678",
            key,
            country="AU",
            number_type="mobile",
            monthly_price=6 * D,
            rate_ref="default@2026.11.1:numbers.csv:13",
            sms_enabled=True,
        )


def test_rent_numbers_first_month_line_has_decimal_strings_like_its_renewals(
    engine: sa.Engine,
) -> None:
    wallet, clock, account = _wallet(engine)
    _rent(wallet, account, "rent-1")
    clock.now = T0 + timedelta(days=40)
    wallet.grant(account, "purchased", 20 * D, "topup")
    run_cycle(engine, clock.now)
    usage = [e for e in wallet.ledger(account).entries if e.kind == "usage"]
    renewal, first = usage[0].lines[0], usage[-1].lines[0]
    # Before: {"amount": 6000000, ...}: micro-units where every other line has "6.0000".
    assert first == {
        "kind": "number_rental",
        "description": "rental of +61412345678 (AU mobile)",
        "quantity": "1",
        "unit": "months",
        "unit_price": "6.0000",
        "unrounded": "6.0000",
        "amount": "6.0000",
        "rounding": "none",
        "rate": "default@2026.11.1:numbers.csv:13",
        "number": "+61412345678",
        "first_month": True,
    }
    assert {k: v for k, v in renewal.items() if k != "period_start"} == {
        k: v for k, v in first.items() if k != "first_month"
    }


def test_a_rent_number_replay_returns_the_number_its_key_rented_not_a_later_rental(
    engine: sa.Engine,
) -> None:
    wallet, clock, account = _wallet(engine)
    number, charge = _rent(wallet, account, "rent-1")
    clock.now = T0 + timedelta(minutes=1)
    with engine.begin() as conn:
        rn.release_number(conn, account, number.id, now=to_micros(clock.now))
    clock.now = T0 + timedelta(minutes=2)
    wallet.grant(account, "purchased", 20 * D, "topup")
    again, _ = _rent(wallet, account, "rent-2")
    assert again.id != number.id
    replayed, replay = _rent(wallet, account, "rent-1")
    # Before: the replay of rent-1 answered with rent-2's number.
    assert (replayed.id, replayed.status) == (number.id, "released")
    assert replay.replayed
    assert replay.transaction_id == charge.transaction_id
