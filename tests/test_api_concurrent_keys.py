"""Concurrent duplicates of one request with one Idempotency-Key all get the winner's answer,
on every money-moving route that runs a transaction per request, on SQLite and PostgreSQL.

On PostgreSQL the duplicates used to look their key up before waiting for the account's lock,
and then refuse on what the winner had just done (409 `number_in_use`, `call_not_active`,
`idempotency_conflict`), or fail on the key record's unique constraint (500 on account
creation)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from talktime.store import make_engine

import apikit
from apikit import ADMIN, tenant

N = 8


def _all_at_once(send: Callable[[], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=N) as pool:
        return list(pool.map(lambda _: send(), range(N)))


def _one_answer(answers: list[httpx.Response], status: int) -> Any:
    assert [a.status_code for a in answers] == [status] * N, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    return answers[0].json()


def test_concurrent_duplicates_of_a_call_authorization_hold_once(api: Any) -> None:
    t = tenant(api, credit="5.00")
    body = {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user}
    call = _one_answer(_all_at_once(lambda: t.post("/v1/calls", body, key="call-1")), 201)
    assert t.balance()["held"] == call["held"]
    assert len([e for e in t.ledger() if e["kind"] == "hold"]) == 1


def test_concurrent_duplicates_of_a_call_extension_and_completion_apply_once(api: Any) -> None:
    t = tenant(api, credit="5.00")
    body = {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user}
    call = t.post("/v1/calls", body).json()
    path = f"/v1/calls/{call['id']}"
    extended = _one_answer(_all_at_once(lambda: t.post(f"{path}/extend", {}, key="ext-1")), 200)
    assert t.balance()["held"] == extended["held"]
    done = _one_answer(
        _all_at_once(lambda: t.post(f"{path}/complete", {"duration": 70}, key="done-1")), 200
    )
    assert done["state"] == "completed"
    usage = [e for e in t.ledger() if e["kind"] == "usage" and e["amount"] == "-" + done["amount"]]
    assert len(usage) == 1
    assert t.balance()["held"] == "0.0000"


def test_concurrent_duplicates_of_a_number_rental_rent_it_once(api: Any) -> None:
    t = tenant(api, credit="5.00")
    before = t.balance()
    rented = _one_answer(
        _all_at_once(lambda: t.post("/v1/numbers", {"e164": "+14155550199"}, key="num-1")), 201
    )
    numbers = t.get("/v1/numbers").json()["numbers"]
    assert [n["id"] for n in numbers if n["e164"] == "+14155550199"] == [rented["id"]]
    assert before["available"] != t.balance()["available"]
    assert len([e for e in t.ledger() if e["reference"] == f"number:{rented['id']}"]) <= 1


def test_concurrent_duplicates_of_an_account_creation_create_it_once(api: Any, db_url: str) -> None:
    body = {"name": "Dup", "plan": "startup", "credit": "1"}
    headers = {**ADMIN, "Idempotency-Key": "acct-dup-1"}
    created = _one_answer(
        _all_at_once(lambda: api.post("/v1/admin/accounts", json=body, headers=headers)), 201
    )
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ids = conn.exec_driver_sql("SELECT id FROM accounts WHERE name = 'Dup'").scalars()
            assert list(ids) == [created["id"]]
    finally:
        engine.dispose()
    apikit.grant(api, created["id"], "1.00")  # the account works
