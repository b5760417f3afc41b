"""The monthly cycle on both backends: expiry without rollover, new free credit, rentals and
suspension, idempotency, catch-up in order, month-end anchors, and `talktime cycle run`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import get_settings
from talktime.store.wallet_tables import ledger
from talktime.wallet import AccountState, Book, InvalidRequestError, Wallet, grants, rentals
from talktime.wallet import recharge as rc
from talktime.wallet.cycle import CycleFailure, run_cycle
from talktime.wallet.periods import to_micros
from wallet_helpers import FREE, PLAN, T0, make_wallet, number_status, rent, utc

D = 1_000_000
APR1 = datetime(2026, 4, 1, tzinfo=UTC)


def test_period_end_expires_free_credit_without_rollover_and_grants_the_new_one(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    wallet.charge(account, 3 * D, "c1")
    [run] = run_cycle(engine, APR1)
    assert (run.period_start, run.period_end) == (APR1, utc(2026, 5, 1))
    assert (run.expired, run.granted) == (7 * D, FREE)
    balance = wallet.balance(account, APR1)
    assert balance.free == FREE  # not 17: nothing rolled over
    assert balance.free_expires_at == utc(2026, 5, 1)
    [expired] = wallet.events(account, "free_credit.expired")
    assert expired["payload"]["amount"] == 7 * D
    assert len(wallet.events(account, "free_credit.granted")) == 2  # creation + April
    with engine.connect() as conn:
        expiry = conn.execute(sa.select(ledger.c.amount).where(ledger.c.kind == "expiry")).scalars()
        assert list(expiry) == [-7 * D]
    account_row = wallet.account(account)
    assert (account_row.period_start, account_row.period_end) == (APR1, utc(2026, 5, 1))
    assert wallet.verify(APR1) == []


def test_running_the_cycle_twice_changes_nothing_the_second_time(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    rent(engine, account, "+14155550100", 1 * D)
    assert len(run_cycle(engine, APR1)) == 1
    assert run_cycle(engine, APR1) == []
    assert run_cycle(engine, utc(2026, 4, 20)) == []
    assert wallet.balance(account, APR1).free == FREE - 1 * D
    assert len(wallet.events(account, "free_credit.granted")) == 2


def test_rentals_are_charged_from_free_credit_then_paid_credit(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    wallet.grant(account, "purchased", 5 * D, "buy")
    rent(engine, account, "+14155550100", 6 * D)
    rent(engine, account, "+14155550101", 6 * D)
    [run] = run_cycle(engine, APR1)
    assert run.rentals_charged == 12 * D
    assert run.numbers_suspended == ()
    balance = wallet.balance(account, APR1)
    assert (balance.free, balance.paid) == (0, 3 * D)
    page = wallet.ledger(account, kind="usage")
    assert {e.reference for e in page.entries} == {"number:+14155550100", "number:+14155550101"}
    assert all(e.lines[0]["rate"] == "numbers-2026-01:US:local" for e in page.entries)


def test_a_rental_the_credit_cannot_cover_suspends_the_number_and_nothing_goes_negative(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    wallet.grant(account, "purchased", 3 * D, "buy")
    cheap = rent(engine, account, "+14155550100", 2 * D)
    dear = rent(engine, account, "+14155550101", 2 * D)
    [run] = run_cycle(engine, APR1)
    assert run.rentals_charged == 2 * D
    assert run.numbers_suspended == ("+14155550101",)
    assert number_status(engine, account, cheap) == "active"
    assert number_status(engine, account, dear) == "suspended"
    [event] = wallet.events(account, "number.suspended")
    assert event["payload"]["number"] == "+14155550101"
    assert event["payload"]["reason"] == "insufficient_credit"
    assert wallet.balance(account, APR1).paid == 1 * D
    # Next month the suspended number is not charged again; the active one no longer fits.
    [may] = run_cycle(engine, utc(2026, 5, 1))
    assert may.rentals_charged == 0
    assert may.numbers_suspended == ("+14155550100",)
    assert wallet.balance(account, utc(2026, 5, 1)).paid == 1 * D
    assert wallet.verify(utc(2026, 5, 1)) == []


def test_numbers_added_during_a_period_and_released_numbers_are_not_charged(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    released = rent(engine, account, "+14155550100", 1 * D)
    with engine.begin() as conn:
        rentals.release_number(conn, account, released, now=to_micros(T0))
    rent(engine, account, "+14155550100", 1 * D, at=utc(2026, 4, 2))  # the same number, again
    [april] = run_cycle(engine, APR1)
    assert april.rentals_charged == 0
    [may] = run_cycle(engine, utc(2026, 5, 1))
    assert may.rentals_charged == 1 * D


def test_after_downtime_the_cycle_catches_up_period_by_period_in_order(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    rent(engine, account, "+14155550100", 1 * D)
    runs = run_cycle(engine, utc(2026, 7, 15))
    assert [r.period_start for r in runs] == [utc(2026, m, 1) for m in (4, 5, 6, 7)]
    assert [r.expired for r in runs] == [FREE, FREE - D, FREE - D, FREE - D]
    assert all(r.rentals_charged == 1 * D for r in runs)
    assert wallet.account(account).period_end == utc(2026, 8, 1)
    assert wallet.balance(account, utc(2026, 7, 15)).free == FREE - D
    assert wallet.verify(utc(2026, 7, 15)) == []


@pytest.mark.parametrize(
    ("anchor", "starts"),
    [
        (utc(2026, 1, 31), [utc(2026, 2, 28), utc(2026, 3, 31), utc(2026, 4, 30)]),
        (utc(2028, 1, 31), [utc(2028, 2, 29), utc(2028, 3, 31), utc(2028, 4, 30)]),
        (utc(2026, 1, 30, 15), [utc(2026, 2, 28, 15), utc(2026, 3, 30, 15), utc(2026, 4, 30, 15)]),
    ],
)
def test_month_end_anchors_clamp_to_short_months_and_return_to_their_day(
    engine: sa.Engine, anchor: datetime, starts: list[datetime]
) -> None:
    wallet = Wallet(engine, clock=lambda: anchor)
    wallet.upsert_plan(PLAN, FREE)
    account = wallet.create_account("acme", PLAN, "create", anchor=anchor).account.id
    runs = run_cycle(engine, starts[-1])
    assert [r.period_start for r in runs] == starts
    assert [r.period_end for r in runs][:-1] == starts[1:]
    assert all(r.granted == FREE for r in runs)
    assert wallet.verify(starts[-1]) == []
    assert wallet.account(account).period_start == starts[-1]


def test_canceled_accounts_get_no_new_free_credit(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    wallet.set_status(account, "canceled", "cancel")
    [run] = run_cycle(engine, APR1)
    assert (run.expired, run.granted) == (FREE, 0)
    assert wallet.balance(account, APR1).free == 0


def test_rentals_paid_from_purchased_credit_can_queue_an_auto_recharge(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create").account.id
    wallet.grant(account, "purchased", 8 * D, "buy")
    with engine.begin() as conn:
        rc.configure(conn, account, enabled=True, threshold=5 * D, amount=20 * D, now=0)
    rent(engine, account, "+14155550100", 4 * D)
    run_cycle(engine, APR1)
    with engine.connect() as conn:
        [queued] = rc.list_recharges(conn, account)
    assert queued.state == "pending"


def test_cycle_run_command_reports_each_opened_period(
    db_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    monkeypatch.setenv("TALKTIME_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(app, ["cycle", "run", "--now", "2026-05-01", "--json"])
        assert out.exit_code == 0, out.output
        runs = json.loads(out.output)
        assert [(r["account_id"], r["period_start"]) for r in runs] == [
            (account, "2026-04-01T00:00:00+00:00"),
            (account, "2026-05-01T00:00:00+00:00"),
        ]
        again = runner.invoke(app, ["cycle", "run", "--now", "2026-05-01T00:00:00Z"])
        assert again.exit_code == 0
        assert "0 period(s) opened" in again.output
        bad = runner.invoke(app, ["cycle", "run", "--now", "yesterday"])
        assert bad.exit_code == 1
        assert "not an ISO 8601 time" in bad.output
    finally:
        get_settings.cache_clear()


def test_free_credit_held_by_a_call_across_the_month_end_expires_when_released(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "create").account.id
    late = utc(2026, 3, 31, 23, 58)
    hold = wallet.authorize(account, 4 * D, "auth", timedelta(minutes=10), now=late).hold
    [run] = run_cycle(engine, APR1)
    assert run.expired == FREE - 4 * D  # the reserved part waits for the call to end
    assert wallet.verify(APR1) == []
    wallet.settle(hold.id, 1 * D, "settle", now=utc(2026, 4, 1, 0, 1))
    after = utc(2026, 4, 1, 0, 2)
    assert wallet.balance(account, after).free == FREE  # only the new month's credit is left
    assert wallet.verify(after) == []


def test_an_account_the_cycle_cannot_advance_does_not_stop_the_others(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = make_wallet(engine)
    broken = wallet.create_account("broken", PLAN, "a").account.id
    fine = wallet.create_account("fine", PLAN, "b").account.id
    real = grants.issue_free_credit

    def refuse_one(book: Book, state: AccountState, start: int, end: int) -> object:
        if state.id == broken:
            raise InvalidRequestError("simulated refusal")
        return real(book, state, start, end)

    monkeypatch.setattr(grants, "issue_free_credit", refuse_one)
    failures: list[CycleFailure] = []
    runs = run_cycle(engine, utc(2026, 5, 1), failures)
    assert [r.account_id for r in runs] == [fine, fine]
    assert [(f.account_id, f.code) for f in failures] == [(broken, "invalid_request")]
    assert wallet.account(broken).period_end == APR1  # left as it was
    # verify names the account left behind: its old free credit is still unexpired
    assert {b.account_id for b in wallet.verify(utc(2026, 5, 1))} == {broken}
