"""A plan change applies from the next period's free credit even when the cycle has not yet
opened the period it was made in (the minutes after a boundary, or downtime)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from talktime import money
from talktime.service import cards
from talktime.wallet import Wallet
from talktime.wallet.cycle import run_cycle
from talktime.wallet.errors import PlanNotFoundError

import apikit


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _wallet(engine: sa.Engine) -> Wallet:
    wallet = Wallet(engine, clock=lambda: at(2026, 1, 10))
    wallet.upsert_plan("pro", 10_000_000)
    wallet.upsert_plan("biz", 50_000_000)
    return wallet


def _free_by_period(wallet: Wallet, account: int) -> dict[str, int]:
    return {
        f"{g.period_start:%Y-%m}": g.original
        for g in wallet.grants(account)
        if g.kind == "free_monthly" and g.period_start is not None
    }


def test_a_plan_changed_after_the_boundary_before_the_cycle_ran_applies_from_the_next_period(
    engine: sa.Engine,
) -> None:
    wallet = _wallet(engine)
    early = wallet.create_account("early", "pro", "early").account.id
    late = wallet.create_account("late", "pro", "late").account.id
    wallet.set_plan(early, "biz", "early-plan", now=at(2026, 2, 1, 0, 2))  # cycle not run yet
    wallet.run_cycle(now=at(2026, 2, 1, 0, 5))
    wallet.set_plan(late, "biz", "late-plan", now=at(2026, 2, 1, 0, 6))  # cycle already ran
    wallet.run_cycle(now=at(2026, 3, 1, 0, 5))

    expected = {"2026-01": 10_000_000, "2026-02": 10_000_000, "2026-03": 50_000_000}
    assert _free_by_period(wallet, early) == expected
    assert _free_by_period(wallet, late) == expected
    assert wallet.verify(now=at(2026, 3, 1, 0, 5)) == []


def test_after_downtime_the_periods_begun_before_a_plan_change_keep_the_old_plan(
    engine: sa.Engine,
) -> None:
    wallet = _wallet(engine)
    account = wallet.create_account("a", "pro", "a").account.id
    wallet.set_plan(account, "biz", "up", now=at(2026, 4, 15))  # the cycle last ran in January
    wallet.run_cycle(now=at(2026, 6, 2))

    assert _free_by_period(wallet, account) == {
        "2026-01": 10_000_000,
        "2026-02": 10_000_000,
        "2026-03": 10_000_000,
        "2026-04": 10_000_000,
        "2026-05": 50_000_000,
        "2026-06": 50_000_000,
    }
    assert wallet.verify(now=at(2026, 6, 2)) == []


def test_a_status_change_after_the_boundary_opens_the_period_with_the_status_it_began_with(
    engine: sa.Engine,
) -> None:
    wallet = _wallet(engine)
    account = wallet.create_account("a", "pro", "a").account.id
    wallet.set_status(account, "canceled", "cancel", now=at(2026, 2, 1, 0, 2))  # active on Feb 1
    wallet.run_cycle(now=at(2026, 3, 1, 0, 5))  # canceled on Mar 1

    assert _free_by_period(wallet, account) == {"2026-01": 10_000_000, "2026-02": 10_000_000}


def test_a_replayed_or_refused_plan_change_still_answers_as_before(engine: sa.Engine) -> None:
    wallet = _wallet(engine)
    account = wallet.create_account("a", "pro", "a").account.id
    first = wallet.set_plan(account, "biz", "up", now=at(2026, 1, 20))
    again = wallet.set_plan(account, "biz", "up", now=at(2026, 2, 1, 0, 2))
    assert again.replayed
    assert again.account == first.account
    with pytest.raises(PlanNotFoundError):
        wallet.set_plan(account, "nope", "bad", now=at(2026, 2, 1, 0, 3))
    assert wallet.account(account).period_start == at(2026, 1, 1)  # rolled back with it


def test_an_api_plan_change_before_the_cycle_opened_the_period_applies_from_the_next_one(
    db_url: str, tmp_path: Path
) -> None:
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "startup", "2.00") as m:
        client, wallet, account = m.client, m.wallet, m.account
        response = client.patch(
            f"/v1/admin/accounts/{account}",
            json={"plan": "business"},
            headers={**apikit.ADMIN, **apikit.idem()},
        )
        assert response.status_code == 200, response.text
        run_cycle(m.engine, m.now, plan_credit=cards.plan_credit(m.settings))

        # this month began on startup: its credit is startup's, business's from next month
        assert _free_by_period(wallet, account) == {
            f"{m.last_month:%Y-%m}": money.parse("2.00"),
            f"{m.this_month:%Y-%m}": money.parse("2.00"),
        }
        assert wallet.verify() == []
