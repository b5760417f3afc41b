"""The new period's free credit pays from the period's first microsecond, not from whenever the
monthly cycle runs: a charge, a batch, a hold or a number on an account whose period ended
before the cycle opened the next one opens it first (before 30 Nov such a charge took paid
credit, counted against the monthly limit, or was refused for want of credit). The cycle then
finds nothing left to do, and `verify` is clean. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from talktime import money
from talktime.service import cards
from talktime.store.wallet_tables import accounts
from talktime.wallet import ChargeItem, ChargeResult, MonthlyLimitReachedError, Wallet
from talktime.wallet.cycle import catch_up_hook, run_cycle
from talktime.wallet.periods import to_micros
from wallet_helpers import FREE, PLAN, make_wallet, rent

import apikit

JAN = datetime(2026, 1, 10, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
GAP = FEB_1 + timedelta(minutes=2)  # after the boundary, before the cycle's next slot


def _account(wallet: Wallet, paid: int = 0) -> int:
    account = wallet.create_account("Acme", PLAN, "acme", now=JAN).account.id
    wallet.charge(account, FREE, "use-january", now=JAN)  # January's free credit all used
    if paid:
        wallet.grant(account, "purchased", paid, "bought", now=JAN)
    return account


def _last_months_tenant(m: apikit.LastMonth) -> apikit.Tenant:
    """The account of ``m`` with last month's free credit all used, its key and a user."""
    client, account = m.client, m.account
    m.wallet.charge(account, money.parse("2.00"), "last-month", now=m.last_month)
    key = client.post(f"/v1/admin/accounts/{account}/keys", json={}, headers=apikit.ADMIN)
    t = apikit.Tenant(client, account, key.json()["key"], "")
    t.user = client.post("/v1/users", json={"name": "Ada"}, headers=t.auth).json()["id"]
    return t


def test_a_charge_after_the_boundary_before_the_cycle_takes_the_new_free_credit(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = _account(wallet, paid=5_000_000)
    charged = wallet.charge(account, 1_000_000, "feb-1", now=GAP)
    assert (charged.from_free, charged.from_paid) == (1_000_000, 0)
    assert charged.balance.free == FREE - 1_000_000
    assert charged.balance.paid == 5_000_000
    assert run_cycle(engine, GAP) == []  # already opened
    assert wallet.verify(now=GAP) == []
    again = wallet.charge(account, 1_000_000, "feb-1", now=GAP + timedelta(hours=1))
    assert again.replayed
    assert again.transaction_id == charged.transaction_id


def test_an_account_with_only_free_credit_is_not_refused_in_the_gap(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = _account(wallet)
    held = wallet.authorize(account, 2_000_000, "call-1", timedelta(minutes=5), now=GAP)
    assert held.balance.held == 2_000_000
    results = wallet.charge_batch(
        [ChargeItem(account, 1_000_000, "b-1"), ChargeItem(account, 1_000_000, "b-2")], now=GAP
    )
    assert [r.from_free for r in results] == [1_000_000, 1_000_000]  # type: ignore[union-attr]
    assert wallet.verify(now=GAP) == []


def test_a_batch_of_several_accounts_opens_each_ended_period_once(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    first = _account(wallet)
    second = wallet.create_account("Beta", PLAN, "beta", now=JAN).account.id
    items = [ChargeItem(a, 1_000_000, f"k-{a}-{i}") for a in (first, second) for i in range(2)]
    results = wallet.charge_batch(items, now=GAP)
    assert all(r.from_paid == 0 for r in results)  # type: ignore[union-attr]
    free = {a: wallet.balance(a, now=GAP).free for a in (first, second)}
    assert free == {first: FREE - 2_000_000, second: FREE - 2_000_000}
    assert run_cycle(engine, GAP) == []
    assert wallet.verify(now=GAP) == []


def test_a_send_and_a_number_over_http_in_the_gap_use_this_months_free_credit(
    db_url: str, tmp_path: Path
) -> None:
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "startup", "2.00") as m:
        wallet = m.wallet
        t = _last_months_tenant(m)
        number = t.post("/v1/numbers", {"e164": "+14155550100"})
        assert number.status_code == 201, number.text  # it was 402: no paid credit at all
        sent = t.post(
            "/v1/messages",
            {"from": "+14155550100", "to": "+14155550111", "text": "hi", "user": t.user},
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["from_paid"] == "0.0000"
        assert run_cycle(m.engine, m.now, plan_credit=cards.plan_credit(m.settings)) == []
        assert wallet.verify() == []


@pytest.mark.parametrize("batch", [False, True], ids=["charge", "batch"])
def test_a_charge_that_waited_for_the_account_across_the_boundary_takes_the_new_free_credit(
    engine: sa.Engine, batch: bool
) -> None:
    """The charge read its clock just before February began, then waited for the account while
    another transaction opened February (expired January's free credit, granted February's).
    Charged at the time it read first, it found neither usable and was refused (PostgreSQL,
    where the account is locked by the charge's first query, until 1 Dec); it now reads the
    clock again and is charged in February. On SQLite the lock comes before the clock anyway."""
    wallet = make_wallet(engine)
    account = _account(wallet)  # January's free credit all used, no paid credit
    opened = threading.Event()
    read = threading.Event()

    def clock() -> datetime:
        read.set()
        return GAP if opened.is_set() else FEB_1 - timedelta(seconds=1)

    waiting = Wallet(engine, clock=clock)
    outcome: list[object] = []

    def charge() -> None:
        try:
            if batch:
                item = ChargeItem(account, 1_000_000, "at-the-boundary")
                outcome.append(waiting.charge_batch([item])[0])
            else:
                outcome.append(waiting.charge(account, 1_000_000, "at-the-boundary"))
        except Exception as exc:  # reported below
            outcome.append(exc)

    with engine.connect() as conn, conn.begin():
        # SQLite: this transaction's BEGIN IMMEDIATE holds the write lock
        conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account).with_for_update())
        catch_up_hook()(conn, account, to_micros(GAP))  # February opened, not committed yet
        worker = threading.Thread(target=charge)
        worker.start()
        read.wait(1.0)  # PostgreSQL: the charge read its clock and now waits for the account
        time.sleep(0.3)
        opened.set()
    worker.join(30)
    [charged] = outcome
    assert isinstance(charged, ChargeResult), charged
    assert (charged.from_free, charged.from_paid) == (1_000_000, 0)
    assert charged.created_at == GAP
    assert waiting.balance(account, now=GAP).free == FREE - 1_000_000
    assert wallet.verify(now=GAP) == []


def test_a_send_that_waited_for_the_account_across_the_boundary_uses_this_months_free_credit(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race through the API: the send read its clock a second before this month began
    and waited for the account while another transaction opened the month. It is charged to
    this month's free credit (on PostgreSQL it was a 402 until 1 Dec)."""
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "startup", "2.00") as m:
        wallet, account = m.wallet, m.account
        t = _last_months_tenant(m)
        # rented last month (through the API it would open this month now, before the race)
        rent(m.engine, account, "+14155550100", 0, at=m.last_month)
        opened = threading.Event()
        before = to_micros(m.this_month) - 1_000_000
        real = cards.now_micros
        monkeypatch.setattr(cards, "now_micros", lambda: real() if opened.is_set() else before)
        body = {"from": "+14155550100", "to": "+14155550111", "text": "hi", "user": t.user}
        answers: list[Any] = []
        with m.engine.connect() as conn, conn.begin():
            conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account).with_for_update())
            cards.catch_up(m.settings)(conn, account, to_micros(m.now))  # this month, uncommitted
            worker = threading.Thread(target=lambda: answers.append(t.post("/v1/messages", body)))
            worker.start()
            time.sleep(0.5)  # the send is waiting for the account (or for SQLite's write lock)
            opened.set()
        worker.join(30)
        [sent] = answers
        assert sent.status_code == 201, sent.text
        assert sent.json()["from_paid"] == "0.0000"
        assert sent.json()["created_at"] >= m.this_month.isoformat()[:19]
        assert wallet.verify() == []


def test_a_monthly_limit_set_after_downtime_applies_from_now_not_to_the_periods_before(
    engine: sa.Engine,
) -> None:
    # The cycle last ran on 1 Jan; a limit set on 5 Apr was applied by the catch-up to
    # February and March as well: their rent was refused (monthly_limit_reached for a
    # period that had no limit) and the number stayed suspended for good. The periods that
    # began before the change open as the cycle running on time would have opened them.
    wallet = make_wallet(engine)
    account = wallet.create_account("Acme", "free", "acme", now=JAN).account.id
    wallet.grant(account, "purchased", 20_000_000, "bought", now=JAN)
    number = rent(engine, account, "+14155550100", 1_000_000, at=JAN)
    april = datetime(2026, 4, 5, tzinfo=UTC)
    wallet.set_monthly_limit(account, 500_000, "limit", now=april)
    assert run_cycle(engine, april) == []  # already opened, before the change
    rents = [e for e in wallet.ledger(account, limit=100).entries if e.kind == "usage"]
    assert sorted(e.created_at.month for e in rents) == [2, 3, 4]  # each period's first day
    assert sum(e.amount for e in rents) == -3_000_000
    assert wallet.events(account, "monthly_limit.reached") == []
    assert wallet.events(account, "number.suspended") == []
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM phone_numbers WHERE id = :id"), {"id": number}
        ).scalar()
    assert status == "active"
    with pytest.raises(MonthlyLimitReachedError):  # April used $1 of paid credit: over $0.50
        wallet.charge(account, 1_000, "after-the-change", now=april)
    assert wallet.verify(now=april) == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/settings/monthly-limit", "monthly_limit"),
        ("/v1/settings/low-balance", "low_balance_threshold"),
    ],
)
def test_a_monthly_limit_or_threshold_put_over_http_after_the_boundary_opens_the_period_first(
    db_url: str, tmp_path: Path, path: str, field: str
) -> None:
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "startup", "2.00") as m:
        t = _last_months_tenant(m)
        billing = t.post("/v1/users", {"name": "Bo", "role": "billing"}).json()["id"]
        put = m.client.put(
            path,
            json={field: "0.00", "user": billing},
            headers=t.auth,
        )
        assert put.status_code == 200, put.text
        assert put.json()["free"] == "2.0000"  # this month's free credit, opened first
        assert run_cycle(m.engine, m.now, plan_credit=cards.plan_credit(m.settings)) == []
        assert m.wallet.events(m.account, "monthly_limit.reached") == []
        assert m.wallet.verify() == []


def test_the_balance_read_over_http_in_the_gap_shows_this_months_free_credit(
    db_url: str, tmp_path: Path
) -> None:
    # GET /v1/balance showed free 0.0000 and available 0.0000 (last month's period, its credit
    # gone) while the next send would have been paid from this month's $2
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "startup", "2.00") as m:
        t = _last_months_tenant(m)
        # the admin's view, read first, agrees (it showed last month's period and no credit)
        admin = m.client.get(f"/v1/admin/accounts/{m.account}", headers=apikit.ADMIN).json()
        assert (admin["balance"]["free"], admin["period_start"]) == (
            "2.0000",
            m.this_month.isoformat(),
        )
        shown = t.get("/v1/balance").json()
        assert (shown["free"], shown["available"]) == ("2.0000", "2.0000")
        assert shown["period_start"] == m.this_month.isoformat()
        assert shown["free_expires_at"] == shown["period_end"]
        assert t.get("/v1/balance").json() == shown  # opened once
        assert run_cycle(m.engine, m.now, plan_credit=cards.plan_credit(m.settings)) == []
        assert m.wallet.verify() == []
