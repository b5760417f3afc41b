"""The monthly cycle's bound on catch-up, on both backends: one run opens at most
`MAX_PERIODS_PER_RUN` periods per account and names the accounts still behind, the next run goes
on in order, a caught-up database is left alone, and `talktime cycle run` refuses an implausible
`--now` and says when to run again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import Settings
from talktime.ops import registry, tasks
from talktime.ops.jobs import Job
from talktime.store.recharge_tables import cycle_runs
from talktime.store.wallet_tables import ledger
from talktime.wallet import InvalidRequestError, Wallet
from talktime.wallet import cycle as cycle_module
from talktime.wallet.cycle import CycleBehind, CycleRun, run_cycle
from talktime.wallet.periods import add_months, to_micros
from wallet_helpers import FREE, PLAN, T0, make_wallet, number_status, rent, utc

D = 1_000_000
APR1 = datetime(2026, 4, 1, tzinfo=UTC)
FAR = datetime(2030, 1, 15, tzinfo=UTC)  # 46 periods after APR1


def months_from(start: datetime, count: int) -> list[datetime]:
    return [add_months(start, i) for i in range(count)]


def starts_of(runs: list[CycleRun], account: int) -> list[datetime]:
    return [r.period_start for r in runs if r.account_id == account]


def snapshot(engine: sa.Engine) -> tuple[int, int, list[tuple[int, int]]]:
    """Ledger entries, cycle runs and each account's period end: what a run would change."""
    with engine.connect() as conn:
        entries = conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one()
        runs = conn.execute(sa.select(sa.func.count()).select_from(cycle_runs)).scalar_one()
        ends = conn.execute(sa.text("SELECT id, period_end FROM accounts ORDER BY id")).all()
    return entries, runs, [(int(r.id), int(r.period_end)) for r in ends]


@pytest.fixture
def accounts(engine: sa.Engine) -> tuple[Wallet, int, int, int]:
    """Two accounts created at T0 (one renting a number) and one whose period started 2029-10,
    exactly three periods behind FAR."""
    wallet = make_wallet(engine)
    renter = wallet.create_account("renter", PLAN, "a").account.id
    rent(engine, renter, "+14155550100", 1 * D)
    plain = wallet.create_account("plain", PLAN, "b").account.id
    later = Wallet(engine, clock=lambda: utc(2029, 10, 10))
    recent = later.create_account("recent", PLAN, "c").account.id
    return wallet, renter, plain, recent


def test_a_run_far_ahead_opens_the_bound_per_account_and_names_those_still_behind(
    engine: sa.Engine, accounts: tuple[Wallet, int, int, int]
) -> None:
    wallet, renter, plain, recent = accounts
    behind: list[CycleBehind] = []
    runs = run_cycle(engine, FAR, behind=behind, max_periods=3)
    assert starts_of(runs, renter) == months_from(APR1, 3)
    assert starts_of(runs, plain) == months_from(APR1, 3)
    assert starts_of(runs, recent) == months_from(utc(2029, 11, 1), 3)  # caught up at the bound
    assert all(r.rentals_charged == 1 * D for r in runs if r.account_id == renter)
    assert behind == [
        CycleBehind(account, utc(2026, 6, 1), utc(2026, 7, 1)) for account in (renter, plain)
    ]
    assert wallet.account(renter).period_end == utc(2026, 7, 1)
    assert wallet.account(recent).period_end == utc(2030, 2, 1)


def test_the_next_run_goes_on_in_order_until_every_account_has_caught_up(
    engine: sa.Engine, accounts: tuple[Wallet, int, int, int]
) -> None:
    wallet, renter, plain, recent = accounts
    runs = run_cycle(engine, FAR, max_periods=3)
    behind: list[CycleBehind] = []
    second = run_cycle(engine, FAR, behind=behind, max_periods=3)
    assert starts_of(second, renter) == months_from(utc(2026, 7, 1), 3)
    assert starts_of(second, recent) == []
    assert [b.account_id for b in behind] == [renter, plain]
    runs += second
    rounds = 2
    while behind:
        behind.clear()
        runs += run_cycle(engine, FAR, behind=behind, max_periods=3)
        rounds += 1
    assert rounds == 16  # 46 periods, 3 a run
    assert starts_of(runs, renter) == starts_of(runs, plain) == months_from(APR1, 46)
    with engine.connect() as conn:
        opened = conn.execute(
            sa.select(cycle_runs.c.period_start)
            .where(cycle_runs.c.account_id == renter)
            .order_by(cycle_runs.c.period_start)
        ).scalars()
        assert list(opened) == [to_micros(s) for s in months_from(APR1, 46)]
    assert wallet.account(plain).period_start == utc(2030, 1, 1)
    assert len(wallet.events(renter, "free_credit.granted")) == 1 + 46
    assert wallet.balance(renter, FAR).free == FREE - 1 * D
    assert wallet.verify(FAR) == []


def test_rerunning_at_the_same_now_after_catching_up_changes_nothing(
    engine: sa.Engine, accounts: tuple[Wallet, int, int, int]
) -> None:
    wallet = accounts[0]
    behind: list[CycleBehind] = [CycleBehind(0, APR1, APR1)]
    while behind:
        behind.clear()
        run_cycle(engine, FAR, behind=behind, max_periods=20)
    before = snapshot(engine)
    for _ in range(2):
        assert run_cycle(engine, FAR, behind=behind, max_periods=20) == []
        assert run_cycle(engine, FAR, behind=behind) == []
        assert behind == []
        assert snapshot(engine) == before
    assert wallet.verify(FAR) == []


def test_a_run_without_max_periods_honours_max_periods_per_run(
    engine: sa.Engine, accounts: tuple[Wallet, int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, renter, plain, recent = accounts
    monkeypatch.setattr(cycle_module, "MAX_PERIODS_PER_RUN", 2)
    behind: list[CycleBehind] = []
    runs = run_cycle(engine, FAR, behind=behind)
    assert starts_of(runs, renter) == starts_of(runs, plain) == months_from(APR1, 2)
    assert [b.account_id for b in behind] == [renter, plain, recent]


def test_a_clock_far_ahead_stops_at_240_periods_per_account(engine: sa.Engine) -> None:
    assert cycle_module.MAX_PERIODS_PER_RUN == 240
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "a").account.id
    behind: list[CycleBehind] = []
    runs = run_cycle(engine, utc(8999, 12, 31), behind=behind)
    assert len(runs) == 240
    assert runs[-1].period_start == utc(2046, 3, 1)
    assert behind == [CycleBehind(account, utc(2046, 3, 1), utc(2046, 4, 1))]


def test_max_periods_must_be_at_least_one(engine: sa.Engine) -> None:
    with pytest.raises(InvalidRequestError, match="at least 1"):
        run_cycle(engine, FAR, max_periods=0)


# ---- `talktime cycle run` -----------------------------------------------------------------------


def test_cycle_run_names_the_accounts_still_behind_and_exits_3_until_caught_up(
    engine: sa.Engine, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "a").account.id
    monkeypatch.setattr(cycle_module, "MAX_PERIODS_PER_RUN", 2)
    first = cli.invoke(app, ["cycle", "run", "--now", "2026-08-15"])
    assert first.exit_code == 3, first.output
    assert "2 period(s) opened; 1 account(s) still behind: run again" in first.stdout
    said = " ".join(first.stderr.split())  # the console wraps long lines
    assert f"account {account} still behind: its period 2026-05-01 to 2026-06-01" in said
    second = cli.invoke(app, ["cycle", "run", "--now", "2026-08-15", "--json"])
    assert second.exit_code == 3, second.output
    assert "still behind" in second.stderr
    third = cli.invoke(app, ["cycle", "run", "--now", "2026-08-15"])
    assert third.exit_code == 0, third.output
    assert "1 period(s) opened" in third.stdout
    assert "behind" not in third.output
    assert wallet.account(account).period_start == utc(2026, 8, 1)


@pytest.mark.parametrize(
    ("now", "code", "reason"),
    [
        ("9999-12-31", "invalid_time", "out of range: give a time from 1970 to 8999"),
        ("2027-04-01T00:00:01Z", "implausible_time", "more than a year after the latest end"),
    ],
)
def test_cycle_run_refuses_an_implausible_now_and_changes_nothing(
    engine: sa.Engine, cli: CliRunner, now: str, code: str, reason: str
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "a").account.id  # period ends 2026-04-01
    before = snapshot(engine)
    out = cli.invoke(app, ["cycle", "run", "--now", now])
    assert out.exit_code == 1
    said = " ".join(out.stderr.split())  # the console wraps long lines
    assert said.startswith(f"error[{code}]: ")
    assert reason in said
    assert snapshot(engine) == before
    assert wallet.account(account).period_end == APR1


def test_cycle_run_accepts_a_now_a_year_after_the_latest_period_end(
    engine: sa.Engine, cli: CliRunner
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "a").account.id
    out = cli.invoke(app, ["cycle", "run", "--now", "2027-04-01"])
    assert out.exit_code == 0, out.output
    assert "13 period(s) opened" in out.stdout
    assert wallet.account(account).period_start == utc(2027, 4, 1)


def _after_downtime(engine: sa.Engine, first: str) -> tuple[list[int], str]:
    """$5 of promotional credit lapsing 20 Feb, a $1-a-month number, no job from 15 Jan to
    15 Mar, then the worker's two jobs, ``first`` first: the ledger (amounts but grants) and
    the number's status."""
    wallet = make_wallet(engine)
    wallet.upsert_plan("zero", 0)
    account = wallet.create_account("a", "zero", "a", now=utc(2027, 1, 10)).account.id
    wallet.grant(
        account, "promotional", 5 * D, "promo", expires_at=utc(2027, 2, 20), now=utc(2027, 1, 10)
    )
    number = rent(engine, account, "+14155550123", 1 * D, at=utc(2027, 1, 10))
    back = utc(2027, 3, 15)
    ctx = registry.JobContext(
        engine, Settings(database_url=str(engine.url)), "w", lambda: to_micros(back)
    )
    handlers = {"wallet.expire": tasks.expire, "wallet.run_cycle": tasks.cycle}
    for kind in (first, *(k for k in handlers if k != first)):
        handlers[kind](ctx, Job(1, kind, {}, 1, 3, 0, "w", 0))
    assert wallet.verify(now=back) == []
    with engine.connect() as conn:
        entries = conn.execute(
            sa.select(ledger.c.amount)
            .where(ledger.c.account_id == account, ledger.c.kind != "grant")
            .order_by(ledger.c.id)
        ).scalars()
        amounts = list(entries)
    return amounts, number_status(engine, account, number)


def test_after_downtime_the_expiry_job_first_charges_what_the_cycle_first_would(
    engine: sa.Engine,
) -> None:
    # the expiry job ran first after a restart (same slot, lower id): it wrote off all $5 as
    # of 15 Mar, then the cycle, closing February as of its end, found nothing to pay its rent
    # and suspended the number a month early; the job now runs the cycle first
    assert _after_downtime(engine, "wallet.expire") == ([-1 * D, -4 * D], "suspended")


def test_after_downtime_the_cycle_first_pays_februarys_rent_from_the_promo(
    engine: sa.Engine,
) -> None:
    assert _after_downtime(engine, "wallet.run_cycle") == ([-1 * D, -4 * D], "suspended")


def test_the_expiry_job_releases_holds_when_the_cycle_fails_and_leaves_refusals_to_the_cycle(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # since the expiry job runs the cycle first, a cycle that raised stopped every hold's
    # release (the credit stayed held), and an account it refused was logged every minute
    wallet = make_wallet(engine)
    account = wallet.create_account("a", PLAN, "a").account.id
    hold = wallet.authorize(account, 1 * D, "call", timedelta(minutes=2))
    later = T0 + timedelta(minutes=10)
    ctx = registry.JobContext(
        engine, Settings(database_url=str(engine.url)), "w", lambda: to_micros(later)
    )

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the cycle broke")

    monkeypatch.setattr(tasks, "run_cycle", broken)
    with caplog.at_level("ERROR", logger="talktime.worker"):
        tasks.expire(ctx, Job(1, "wallet.expire", {}, 1, 3, 0, "w", 0))
    assert "the monthly cycle failed" in caplog.text
    assert wallet.balance(account, now=later).held == 0
    [released] = wallet.ledger(account, kind="hold_release").entries
    assert released.hold_id == hold.hold.id
    monkeypatch.undo()

    caplog.clear()
    monkeypatch.setattr(
        cycle_module, "advance", lambda *_: (_ for _ in ()).throw(InvalidRequestError("no plan"))
    )
    at_next = add_months(T0, 1)
    ctx = registry.JobContext(
        engine, Settings(database_url=str(engine.url)), "w", lambda: to_micros(at_next)
    )
    with caplog.at_level("WARNING", logger="talktime.wallet"):
        tasks.expire(ctx, Job(2, "wallet.expire", {}, 1, 3, 0, "w", 0))
        refused = [r.getMessage() for r in caplog.records if "not advanced" in r.getMessage()]
        assert refused == []  # left to the cycle's own job
        tasks.cycle(ctx, Job(3, "wallet.run_cycle", {}, 1, 3, 0, "w", 0))
        refused = [r.getMessage() for r in caplog.records if "not advanced" in r.getMessage()]
    assert refused == [f"cycle: account {account} not advanced: no plan"]
