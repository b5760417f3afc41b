"""The monthly cycle: close each account's ended billing period and open the next one.

Per account and period, in one transaction: expire what is left of the free monthly credit (no
rollover), issue the new period's free credit (then judge `balance.low` / `credit.depleted` on
the credit at the period end against the credit after it, the new included), charge the
rental of each number held when the period began (suspending a number the credit does not
cover; the rents judged as one debit) and move the account to the new period. Idempotent per
account and period; after downtime it catches up period by period, in order, at most
`MAX_PERIODS_PER_RUN` periods per account in one run (the next run goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from talktime.errors import TalktimeError
from talktime.store.migrate import refuse_unmigrated
from talktime.store.recharge_tables import cycle_runs
from talktime.store.wallet_tables import accounts
from talktime.store.writer import writing
from talktime.wallet import charges, grants, rentals
from talktime.wallet.book import Book, CatchUp
from talktime.wallet.errors import InvalidRequestError
from talktime.wallet.inputs import check_moment
from talktime.wallet.periods import from_micros, period_bounds_micros, to_micros, utcnow

log = logging.getLogger(__name__)

MAX_PERIODS_PER_RUN = 240
"""Bound on catch-up per account in one run (20 years of months)."""

PlanCredit = Callable[[sa.Connection, int, str, int], "int | None"]
"""``(conn, account_id, plan, period_start)`` -> the plan's monthly free credit for that
account and period, or None to use the plans table. The service passes one that reads the
account's own rate card (plans of the same name may differ between cards)."""


@dataclass(frozen=True)
class CycleRun:
    """One account moved into a new period, and what that took."""

    account_id: int
    period_start: datetime
    period_end: datetime
    expired: int
    granted: int
    rentals_charged: int
    numbers_suspended: tuple[str, ...]


SUBSCRIPTION_CANCELED = "subscription_canceled"
"""The `reason` of a number suspended because its account's subscription was canceled when the
period began: a canceled account is charged no more rent."""


def _suspension(number: rentals.PhoneNumber, reason: str, period_start: int) -> dict[str, Any]:
    """The payload of `number.suspended` for a rent the cycle did not take."""
    return {
        "number_id": number.id,
        "number": number.e164,
        "monthly_price": number.monthly_price,
        "reason": reason,
        "period_start": from_micros(period_start).isoformat(),
    }


def rental_key(number_id: int, period_start: int) -> str:
    """Idempotency key of a number's rental charge for one period."""
    return f"rental:{number_id}:{period_start}"


def due_accounts(conn: sa.Connection, now: int, limit: int = 1000) -> list[int]:
    """Accounts whose current period ended at or before ``now``, the longest-ended first."""
    query = (
        sa.select(accounts.c.id)
        .where(accounts.c.period_end <= now)
        .order_by(accounts.c.period_end, accounts.c.id)
        .limit(limit)
    )
    return [r.id for r in conn.execute(query)]


def advance(
    engine: sa.Engine, account_id: int, now: int, plan_credit: PlanCredit | None = None
) -> CycleRun | None:
    """Move one account into its next period if its current one ended by ``now``.

    One transaction. A period caught up after downtime is closed as of its end (the time of
    its entries: credit bought later cannot pay an earlier month's rent); the period holding
    ``now`` is opened as of ``now``. Returns None when the account's period has not ended (or
    another worker advanced it first).
    """
    with writing(engine) as conn:
        return advance_in(conn, account_id, now, plan_credit)


def catch_up(
    conn: sa.Connection, account_id: int, now: int, plan_credit: PlanCredit | None = None
) -> list[CycleRun]:
    """Open, on ``conn`` (in the caller's transaction), every period of the account that began
    by ``now`` and the cycle has not opened yet (at most `MAX_PERIODS_PER_RUN`).

    A plan or status change calls it first, so the periods that began before the change are
    opened with the plan and status they began with, as the cycle running on time would have.
    """
    runs: list[CycleRun] = []
    while len(runs) < MAX_PERIODS_PER_RUN:
        run = advance_in(conn, account_id, now, plan_credit)
        if run is None:
            break
        runs.append(run)
    return runs


def catch_up_hook(plan_credit: PlanCredit | None = None) -> CatchUp:
    """A `Book`'s ``catch_up``: `catch_up` with ``plan_credit``, in a savepoint. An account
    the cycle cannot advance (a plan no card or table knows) is left where it is, as the
    cycle leaves it (and reports it): the request goes on in the period as it stands."""

    def hook(conn: sa.Connection, account_id: int, now: int) -> None:
        try:
            with conn.begin_nested():
                catch_up(conn, account_id, now, plan_credit)
        except TalktimeError as refusal:
            log.warning("account %s: its new period could not be opened: %s", account_id, refusal)

    return hook


def advance_in(
    conn: sa.Connection, account_id: int, now: int, plan_credit: PlanCredit | None = None
) -> CycleRun | None:
    """`advance` on ``conn``, in the caller's transaction."""
    row = conn.execute(
        sa.select(accounts.c.period_end, accounts.c.anchor_at).where(accounts.c.id == account_id)
    ).first()
    if row is None or row.period_end > now:
        return None
    boundary = row.period_end
    start, end = period_bounds_micros(row.anchor_at, boundary)
    book = Book(conn, boundary if end <= now else now)
    state = book.account(account_id)  # locked: re-check under the lock
    if state.period_end != boundary:
        return None
    expired, lapses = grants.expire_parts(book, state)
    grants.judge_lapses(book, state, [m for m in lapses if m < boundary])
    # the ledger as it stood at the period end (whoever expired the free credit since):
    # what a charge made after it saw and judged is not judged again. Other credit lapsing
    # then was judged by the expiry job, unless it is expired here.
    before, kept, _, at_end = grants.available_around_both(conn, state, boundary)
    if boundary in lapses:
        book.debit_events(state, before, kept)
    granted = 0
    if state.status == "active":
        amount = None
        if plan_credit is not None:
            amount = plan_credit(conn, account_id, state.plan, start)
        if amount is None:  # the plans table's figure
            free = grants.issue_free_credit(book, state, start, end)
        else:
            free = grants.issue_free_credit(book, state, start, end, amount)
        granted = free.original if free is not None else 0
    # in time's order: the opening (with the new free credit in), what lapsed since the end
    # (a late cycle), then the rents (below)
    book.debit_events(state, kept, at_end + granted)
    for moment in sorted(m for m in lapses if m > boundary):
        lapse = grants.available_around(conn, state, moment, keep_period_free=False)
        book.debit_events(state, lapse[0] + granted, lapse[1] + granted)
    before_rents = state.available(book.now)  # what grants and refunds since the end left
    charged = 0
    suspended: list[str] = []
    for number in rentals.rentals_due(conn, account_id, start):
        if number.monthly_price == 0:
            continue
        if state.status == "canceled":  # no rent after the subscription ended
            reason: str | None = SUBSCRIPTION_CANCELED
        else:
            reason = None
            try:
                charges.charge(
                    book,
                    account_id,
                    number.monthly_price,
                    rental_key(number.id, start),
                    reference=f"number:{number.e164}",
                    lines=[rentals.renewal_line(number, start)],
                    judge=False,  # all the rents as one debit, below
                )
                charged += number.monthly_price
            except TalktimeError as refusal:
                reason = refusal.code
        if reason is None:
            continue
        if not rentals.suspend_number(conn, account_id, number.id, now=book.now):
            # released since the period began: nothing to suspend, no later rent
            rentals.stop_late_rent(conn, account_id, number.id, now=book.now)
            continue
        suspended.append(number.e164)
        book.event(account_id, rentals.NUMBER_SUSPENDED, _suspension(number, reason, start))
    # The rents are judged as one debit, from the live credit before them to the live credit
    # after them: judged rent by rent, `balance.low` carried a figure between two rents that
    # no read ever showed.
    book.debit_events(state, before_rents)
    conn.execute(
        sa.update(accounts)
        .where(accounts.c.id == account_id)
        .values(period_start=start, period_end=end)
    )
    state.period_start, state.period_end = start, end
    conn.execute(
        sa.insert(cycle_runs).values(
            account_id=account_id,
            period_start=start,
            period_end=end,
            expired=expired,
            granted=granted,
            rentals_charged=charged,
            numbers_suspended=len(suspended),
            ran_at=now,
        )
    )
    book.flush()
    return CycleRun(
        account_id=account_id,
        period_start=from_micros(start),
        period_end=from_micros(end),
        expired=expired,
        granted=granted,
        rentals_charged=charged,
        numbers_suspended=tuple(suspended),
    )


@dataclass(frozen=True)
class CycleFailure:
    """An account the cycle could not advance (e.g. its plan is gone); the others went on."""

    account_id: int
    code: str
    detail: str


@dataclass(frozen=True)
class CycleBehind:
    """An account that reached the run's bound (`MAX_PERIODS_PER_RUN`) with ended periods left;
    the next run goes on from the period it is in, which already ended."""

    account_id: int
    period_start: datetime
    period_end: datetime


def latest_period_end(conn: sa.Connection) -> datetime | None:
    """The latest end of any account's current period (None when there are no accounts)."""
    latest = conn.execute(sa.select(sa.func.max(accounts.c.period_end))).scalar()
    return None if latest is None else from_micros(int(latest))


@refuse_unmigrated()
def run_cycle(
    engine: sa.Engine,
    now: datetime | None = None,
    failures: list[CycleFailure] | None = None,
    *,
    behind: list[CycleBehind] | None = None,
    max_periods: int | None = None,
    plan_credit: PlanCredit | None = None,
    report: bool = True,
) -> list[CycleRun]:
    """Advance every account whose period ended by ``now`` (default: the current time), one
    period at a time and in order, until each is in the period holding ``now`` or has opened
    ``max_periods`` periods in this run (default `MAX_PERIODS_PER_RUN`).

    An account stopped by that bound while still behind is logged and appended to ``behind``;
    the next run continues it. An account that is refused (a `TalktimeError`, such as an unknown
    plan) is left as it is, logged and appended to ``failures``. The other accounts are still
    advanced either way. ``plan_credit`` says each account's free credit for a period (default:
    the plans table). With ``report`` False the refused and lagging accounts are only appended,
    not logged (a caller that runs the cycle more often than its own job, and leaves the
    logging to that job). A database never migrated is refused with `DatabaseNotMigratedError`.
    """
    check_moment(now, "now")
    if max_periods is not None and (
        isinstance(max_periods, bool) or not isinstance(max_periods, int) or max_periods < 1
    ):
        raise InvalidRequestError(f"max_periods is an int of at least 1, not {max_periods!r}")
    at = to_micros(now or utcnow())
    bound = MAX_PERIODS_PER_RUN if max_periods is None else max_periods
    runs: list[CycleRun] = []
    opened: dict[int, int] = {}  # periods opened per account in this run
    done: set[int] = set()  # refused, or at the bound: not looked at again in this run
    lagging: list[CycleBehind] = []
    while True:
        with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            due = [a for a in due_accounts(conn, at, limit=1000 + len(done)) if a not in done]
        if not due:
            break
        for account_id in due:
            count = opened.get(account_id, 0)
            last: CycleRun | None = None
            try:
                while count < bound:
                    run = advance(engine, account_id, at, plan_credit)
                    if run is None:
                        break
                    runs.append(run)
                    count += 1
                    last = run
            except TalktimeError as refusal:
                if report:
                    log.error("cycle: account %s not advanced: %s", account_id, refusal.detail)
                done.add(account_id)
                if failures is not None:
                    failures.append(CycleFailure(account_id, refusal.code, refusal.detail))
            opened[account_id] = count
            if count >= bound and account_id not in done:
                done.add(account_id)
                if last is not None and to_micros(last.period_end) <= at:
                    lagging.append(CycleBehind(account_id, last.period_start, last.period_end))
    if lagging and report:
        log.warning(
            "cycle: %d account(s) still behind after %d periods each in this run (first: account"
            " %s, in the period ending %s); the next run goes on",
            len(lagging),
            bound,
            lagging[0].account_id,
            lagging[0].period_end.isoformat(),
        )
    if behind is not None:
        behind.extend(lagging)
    return runs
