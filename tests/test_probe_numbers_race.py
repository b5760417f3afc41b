"""Several accounts adding one number at the same moment: exactly one rents it, every other
gets 409 `number_in_use`, with the sentence for another account's number, and is charged
nothing; on SQLite and PostgreSQL.

On PostgreSQL a loser whose service check ran before the winner committed, and whose wallet
check ran after, was told "already rented by an account; release it first": a number only its
owner can release (the wallet's own sentence, now the same as the service's)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import rentals
from wallet_helpers import PLAN, make_wallet

from apikit import tenant

N = 6


def test_accounts_racing_for_one_number_one_wins_and_the_others_are_409_and_not_charged(
    api: Any,
) -> None:
    racers = [tenant(api, credit="10.00", number=None) for _ in range(N)]
    before = [r.balance()["available"] for r in racers]
    barrier = Barrier(N)

    def add(i: int) -> Any:
        barrier.wait()
        return racers[i].post("/v1/numbers", {"e164": "+61412345678"})

    with ThreadPoolExecutor(max_workers=N) as pool:
        answers = list(pool.map(add, range(N)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * (N - 1), [a.text for a in answers]
    for racer, answer, was in zip(racers, answers, before, strict=True):
        numbers = racer.get("/v1/numbers").json()["numbers"]
        if answer.status_code == 201:
            assert [n["e164"] for n in numbers] == ["+61412345678"]
            assert racer.balance()["available"] != was
        else:
            assert answer.json()["code"] == "number_in_use"
            assert answer.json()["detail"] == (
                "+61412345678 is rented by another account; choose another number."
            )
            assert numbers == []
            assert racer.balance()["available"] == was
            assert [e["kind"] for e in racer.ledger()] == ["grant", "grant"]


def test_the_wallet_refuses_another_accounts_number_saying_to_choose_another(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    owner = wallet.create_account("owner", PLAN, "a").account.id
    other = wallet.create_account("other", PLAN, "b").account.id

    def add(conn: sa.Connection, account: int) -> rentals.PhoneNumber:
        return rentals.add_number(
            conn,
            account,
            "+14155550100",
            country="US",
            number_type="local",
            monthly_price=1_000_000,
            rate_ref="r",
            now=5,
        )

    with engine.begin() as conn:
        number_id = add(conn, owner).id
    with engine.begin() as conn, pytest.raises(rentals.NumberInUseError) as refused:
        add(conn, other)
    assert str(refused.value) == (
        "+14155550100 is rented by another account; choose another number."
    )
    with engine.begin() as conn, pytest.raises(rentals.NumberInUseError) as refused:
        add(conn, owner)
    assert str(refused.value) == (
        f"+14155550100 is already this account's number {number_id}; nothing to add."
    )


def test_one_account_adding_one_number_under_several_keys_at_once_rents_it_once(
    api: Any,
) -> None:
    t = tenant(api, credit="50.00", number=None)
    barrier = Barrier(N)

    def add(_: int) -> Any:
        barrier.wait()
        return t.post("/v1/numbers", {"e164": "+61412345678"})

    with ThreadPoolExecutor(max_workers=N) as pool:
        answers = list(pool.map(add, range(N)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * (N - 1)
    (won,) = [a.json() for a in answers if a.status_code == 201]
    for lost in (a.json() for a in answers if a.status_code == 409):
        assert lost["detail"] == (
            f"+61412345678 is already this account's number {won['id']}; nothing to add."
        )
    assert [n["id"] for n in t.get("/v1/numbers").json()["numbers"]] == [won["id"]]
    assert [e["amount"] for e in t.ledger() if e["kind"] == "usage"] in (
        ["-6.0000"],
        ["-4.0000", "-2.0000"],
        ["-2.0000", "-4.0000"],
    )
