"""A send right after a period boundary is judged on the number as the new period left it.

The send reads its context (sending number, user, card) before it locks the account, and the
period's opening (the send's own catch-up, or on PostgreSQL a cycle or another request the
lock waited for) may suspend that number for a rent the credit does not cover. Before, the
send then went out, and was charged, from the number just suspended (201), while the next
send, or any send had the cycle run on time, was refused 422 `number_not_sms_enabled`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from talktime import money
from talktime.service import cards
from talktime.wallet import cycle, rentals
from talktime.wallet.cycle import run_cycle
from talktime.wallet.periods import to_micros

import apikit

NUMBER = "+14155550100"


@contextmanager
def _unpaid_rent(db_url: str, tmp_path: Path) -> Iterator[tuple[apikit.LastMonth, apikit.Tenant]]:
    """An account from last month on a plan with no free credit, $0.50 paid credit and a
    number of $1.15 a month: this month's opening suspends the number (rent not covered)."""
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "nocredit", "0") as m:
        m.wallet.grant(m.account, "purchased", money.parse("0.50"), "paid", now=m.last_month)
        with m.engine.begin() as conn:
            rentals.add_number(
                conn,
                m.account,
                NUMBER,
                country="US",
                number_type="local",
                monthly_price=money.parse("1.15"),
                rate_ref="numbers-2026-01:US:local",
                now=to_micros(m.last_month),
                sms_enabled=True,
            )
        key = m.client.post(f"/v1/admin/accounts/{m.account}/keys", json={}, headers=apikit.ADMIN)
        t = apikit.Tenant(m.client, m.account, key.json()["key"], "", number=NUMBER)
        t.user = m.client.post("/v1/users", json={"name": "Ada"}, headers=t.auth).json()["id"]
        yield m, t


def _refused_as_suspended(response: object) -> None:
    assert getattr(response, "status_code", None) == 422, getattr(response, "text", response)
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == "number_not_sms_enabled"
    assert body["detail"] == f"{NUMBER} is suspended; send from an active number."


def test_a_send_whose_catch_up_suspends_its_number_is_refused_and_charges_nothing(
    db_url: str, tmp_path: Path
) -> None:
    with _unpaid_rent(db_url, tmp_path) as (m, t):
        before = t.balance()["available"]
        _refused_as_suspended(t.sms("+14155550111"))
        assert t.balance()["available"] == before
        assert [e["kind"] for e in t.ledger()] == ["grant"]  # the paid credit only
        run_cycle(m.engine, m.now, plan_credit=cards.plan_credit(m.settings))
        assert [n["status"] for n in t.get("/v1/numbers").json()["numbers"]] == ["suspended"]
        _refused_as_suspended(t.sms("+14155550111"))
        assert m.wallet.verify() == []


def test_a_send_waiting_for_a_period_opened_by_another_transaction_sees_the_suspension(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite takes the write lock at BEGIN: the send reads after the opening")
    with _unpaid_rent(db_url, tmp_path) as (m, t):
        answers: list[object] = []
        with m.engine.connect() as conn, conn.begin():
            # another transaction opens the period (suspending the number), not yet committed
            cycle.catch_up(conn, m.account, to_micros(m.now), cards.plan_credit(m.settings))
            sender = threading.Thread(target=lambda: answers.append(t.sms("+14155550111")))
            sender.start()
            time.sleep(0.5)  # the send read its context and waits for the account's lock
            assert answers == []
        sender.join(10)
        _refused_as_suspended(answers[0])
        with m.engine.connect() as conn:
            count = sa.text("SELECT count(*) FROM messages WHERE account_id = :a")
            assert conn.execute(count, {"a": m.account}).scalar() == 0
        assert m.wallet.verify() == []
