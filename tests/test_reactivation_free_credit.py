"""A subscription that is not active when its period starts gets no free credit from the cycle;
once it is active again it gets that period's free credit, once, from its own plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from talktime import money
from talktime.service import cards
from talktime.wallet import Wallet
from talktime.wallet.cycle import run_cycle
from wallet_helpers import FREE, PLAN

import apikit

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def _free_grants(wallet: Wallet, account: int, now: datetime) -> list[int]:
    return [e.amount for e in wallet.ledger(account, kind="grant", until=now).entries]


def test_an_account_past_due_at_the_period_start_gets_its_free_credit_when_active_again(
    engine: sa.Engine,
) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan(PLAN, FREE, now=MARCH)
    account = wallet.create_account("Acme", PLAN, "acct", now=MARCH).account.id
    wallet.set_status(account, "past_due", "late", now=MARCH + timedelta(days=20))
    run_cycle(engine, APRIL + timedelta(minutes=5))
    assert wallet.balance(account, now=APRIL + timedelta(days=1)).free == 0

    paid_up = APRIL + timedelta(days=2)
    result = wallet.set_status(account, "active", "paid", now=paid_up)
    assert result.balance.free == FREE
    assert wallet.balance(account, now=paid_up).free == FREE
    grant = wallet.ledger(account, kind="grant", limit=1, until=paid_up + timedelta(1)).entries
    assert grant[0].amount == FREE
    events = [e for e in wallet.events(account) if e["type"] == "free_credit.granted"]
    assert len(events) == 2  # March's at creation, April's now
    assert events[-1]["payload"]["period_start"] == APRIL.isoformat()

    # a replay, or another lapse and recovery in the same period, grants nothing more
    assert wallet.set_status(account, "active", "paid", now=paid_up).replayed
    wallet.set_status(account, "past_due", "late-2", now=paid_up + timedelta(days=1))
    wallet.set_status(account, "active", "paid-2", now=paid_up + timedelta(days=2))
    assert len(_free_grants(wallet, account, APRIL + timedelta(days=10))) == 2
    assert wallet.balance(account, now=APRIL + timedelta(days=10)).free == FREE
    assert wallet.verify(now=APRIL + timedelta(days=10)) == []


def test_a_reactivation_after_the_period_ended_leaves_that_period_to_the_cycle(
    engine: sa.Engine,
) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan(PLAN, FREE, now=MARCH)
    account = wallet.create_account("Acme", PLAN, "acct", now=MARCH).account.id
    wallet.set_status(account, "past_due", "late", now=MARCH + timedelta(days=20))
    # March ended, the cycle has not run: the change first opens April as the cycle would (past
    # due then: no credit), then the reactivation grants April's; none more for March
    wallet.set_status(account, "active", "paid", now=APRIL + timedelta(minutes=1))
    assert len(_free_grants(wallet, account, APRIL + timedelta(days=1))) == 2
    run_cycle(engine, APRIL + timedelta(minutes=5))  # nothing left to open: April's once
    assert wallet.balance(account, now=APRIL + timedelta(hours=1)).free == FREE
    assert len(_free_grants(wallet, account, APRIL + timedelta(days=1))) == 2
    assert wallet.verify(now=APRIL + timedelta(days=1)) == []


def test_an_api_reactivation_grants_the_plans_credit_from_the_accounts_own_card(
    db_url: str, tmp_path: Path
) -> None:
    # the plans table's business credit is not the card's
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "business", "99.00") as m:
        client, wallet, account = m.client, m.wallet, m.account
        wallet.set_status(account, "past_due", "late", now=m.last_month + timedelta(days=1))
        run_cycle(m.engine, m.now, plan_credit=cards.plan_credit(m.settings))
        assert wallet.balance(account).free == 0

        apikit.set_status(client, account, "active")
        assert wallet.balance(account).free == money.parse("10.00")  # the default card's
        apikit.set_status(client, account, "active")
        assert wallet.balance(account).free == money.parse("10.00")
        assert wallet.verify() == []


def test_a_reactivation_grants_the_plan_it_has_then_even_one_changed_while_canceled(
    engine: sa.Engine,
) -> None:
    # a decision (README, Payments...: "A reactivation is the exception"): the period that
    # began while canceled had no credit issued, so it comes from the plan of the comeback
    wallet = Wallet(engine)
    wallet.upsert_plan(PLAN, FREE, now=MARCH)
    wallet.upsert_plan("big", 25 * 10**6, now=MARCH)
    account = wallet.create_account("Acme", PLAN, "acct", now=MARCH).account.id
    wallet.set_status(account, "canceled", "leave", now=MARCH + timedelta(days=20))
    run_cycle(engine, APRIL + timedelta(minutes=5))
    wallet.set_plan(account, "big", "upgrade", now=APRIL + timedelta(days=5))
    back = wallet.set_status(account, "active", "back", now=APRIL + timedelta(days=10))
    assert back.balance.free == 25 * 10**6
    run_cycle(engine, datetime(2026, 5, 1, 0, 5, tzinfo=UTC))
    assert _free_grants(wallet, account, datetime(2026, 5, 2, tzinfo=UTC)) == [
        25 * 10**6,  # May
        25 * 10**6,  # April, at the reactivation
        FREE,  # March, at creation
    ]
    assert wallet.verify(now=datetime(2026, 5, 2, tzinfo=UTC)) == []
