"""Accounts: creation (with the first period's free credit), plan, subscription status,
monthly limit, low-balance threshold, the plans table, and balance reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from talktime.store.wallet_tables import GRANT_LIVE, accounts, grants, plans, usage_periods
from talktime.wallet.book import (
    LIVE_GRANTS,
    Book,
    account_state,
    check_amount,
    insert_id,
    live_grant,
)
from talktime.wallet.errors import AccountNotFoundError, InvalidRequestError
from talktime.wallet.grants import issue_free_credit, plan_free_credit
from talktime.wallet.idempotency import NO_ACCOUNT, fingerprint
from talktime.wallet.model import STATUSES, Account, AccountResult, Balance, from_json, to_json
from talktime.wallet.periods import (
    from_micros,
    month_start,
    period_bounds_micros,
    to_micros,
)

_ACCOUNT = sa.select(accounts).where(accounts.c.id == sa.bindparam("account_id"))


def upsert_plan(conn: sa.Connection, name: str, monthly_free_credit: int, now: int) -> None:
    """Create or update a plan's monthly free credit (synced from the rate card's plans).

    A change applies to free credit issued from then on, not to a period already issued.
    """
    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidRequestError("a plan name is a non-empty string of at most 64 characters")
    check_amount(monthly_free_credit, allow_zero=True, what="monthly free credit")
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(plans)
    conn.execute(
        insert.values(
            name=name, monthly_free_credit=monthly_free_credit, updated_at=now
        ).on_conflict_do_update(
            index_elements=[plans.c.name],
            set_={"monthly_free_credit": monthly_free_credit, "updated_at": now},
        )
    )


def list_plans(conn: sa.Connection) -> dict[str, int]:
    """Every plan and its monthly free credit."""
    rows = conn.execute(sa.select(plans.c.name, plans.c.monthly_free_credit))
    return {r.name: r.monthly_free_credit for r in rows}


def currency_of(conn: sa.Connection, account_id: int) -> str | None:
    """The currency the account is billed in; None when there is no such account."""
    found = conn.execute(sa.select(accounts.c.currency).where(accounts.c.id == account_id)).scalar()
    return None if found is None else str(found)


def get_account(conn: sa.Connection, account_id: int) -> Account:
    """The stored account (`AccountNotFoundError` if there is none)."""
    row = conn.execute(_ACCOUNT, {"account_id": account_id}).first()
    if row is None:
        raise AccountNotFoundError(f"there is no account {account_id}", account_id=account_id)
    return as_account(row)


def as_account(row: Any) -> Account:
    """An `accounts` row (with at least its columns) as an `Account`."""
    return Account(
        id=row.id,
        name=row.name,
        currency=row.currency,
        plan=row.plan,
        status=row.status,
        anchor_at=from_micros(row.anchor_at),
        period_start=from_micros(row.period_start),
        period_end=from_micros(row.period_end),
        monthly_limit=row.monthly_limit,
        low_balance_threshold=row.low_balance_threshold,
        created_at=from_micros(row.created_at),
    )


def create(
    book: Book,
    name: str,
    plan: str,
    key: str,
    *,
    currency: str = "USD",
    anchor: datetime | None = None,
    monthly_limit: int | None = None,
    low_balance_threshold: int | None = None,
) -> AccountResult:
    """Create an account and issue its first period's free credit from the plans table.

    The billing period anchor defaults to the start of the current calendar month (UTC), so
    periods are calendar months.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidRequestError("an account name is a non-empty string of at most 200 characters")
    # ASCII letters only: "ßab" is three letters whose upper case "SSAB" is four, which
    # SQLite stored and PostgreSQL's VARCHAR(3) refused with a raw error
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
    ):
        raise InvalidRequestError(f"currency {currency!r} is not a 3-letter ISO 4217 code")
    for what, value in (("monthly limit", monthly_limit), ("threshold", low_balance_threshold)):
        if value is not None:
            check_amount(value, allow_zero=True, what=what)
    anchor_at = to_micros(anchor if anchor is not None else month_start(from_micros(book.now)))
    params = {
        "name": name,
        "plan": plan,
        "currency": currency.upper(),
        "anchor_at": anchor_at if anchor is not None else None,
        "monthly_limit": monthly_limit,
        "low_balance_threshold": low_balance_threshold,
    }
    fp = fingerprint("create_account", params)
    stored = book.replay(NO_ACCOUNT, key, "create_account", fp)
    if stored is not None:
        return from_json(AccountResult, stored, replayed=True)
    plan_free_credit(book.conn, plan)  # refuses an unknown plan before anything is written
    start, end = period_bounds_micros(anchor_at, book.now)
    account_id = insert_id(
        book.conn,
        sa.insert(accounts).values(
            name=name,
            currency=currency.upper(),
            plan=plan,
            status="active",
            anchor_at=anchor_at,
            period_start=start,
            period_end=end,
            monthly_limit=monthly_limit,
            low_balance_threshold=low_balance_threshold,
            created_at=book.now,
        ),
    )
    state = book.account(account_id)
    issue_free_credit(book, state, start, end)
    result = AccountResult(get_account(book.conn, account_id), state.balances(book.now))
    book.remember(NO_ACCOUNT, key, "create_account", fp, to_json(result))
    return result


def update(
    book: Book,
    account_id: int,
    operation: str,
    changes: dict[str, Any],
    key: str,
    plan_credit: Callable[[sa.Connection, int, str, int], int | None] | None = None,
) -> AccountResult:
    """Idempotently change account settings (plan, status, monthly limit, threshold).

    A subscription that becomes `active` again gets the current period's free credit if the
    cycle skipped it (the account was not active at the period's start; never in the period
    the account was created in); ``plan_credit`` says how much, as for the cycle (default:
    the plans table's).
    """
    fresh = account_id not in book.states
    state = book.account(account_id, key)
    fp = fingerprint(operation, changes)
    stored = book.replay(state.id, key, operation, fp)
    if stored is not None:
        return from_json(AccountResult, stored, replayed=True)
    if fresh and ("plan" in changes or "status" in changes) and book.now >= state.period_end:
        # the cycle has not opened the periods begun since: open them with the plan and
        # status they began with (a change applies from the next period), then reload
        from talktime.wallet import cycle  # imports this module's neighbours: at call time

        cycle.catch_up(book.conn, state.id, book.now, plan_credit)
        del book.states[state.id]
        state = book.account(state.id)
    reactivated = changes.get("status") == "active" and state.status != "active"
    if "status" in changes and changes["status"] not in STATUSES:
        raise InvalidRequestError(
            f"status {changes['status']!r} is not one of {', '.join(STATUSES)}",
            status=changes["status"],
        )
    if "plan" in changes:
        plan_free_credit(book.conn, changes["plan"])
    for column in ("monthly_limit", "low_balance_threshold"):
        if changes.get(column) is not None:
            check_amount(changes[column], allow_zero=True, what=column.replace("_", " "))
    book.conn.execute(sa.update(accounts).where(accounts.c.id == state.id).values(**changes))
    if "monthly_limit" in changes:
        from talktime.wallet import recharge  # imports this module's neighbours: at call time

        recharge.resume_postponed(book.conn, state.id, book.now)
    for column, value in changes.items():
        if hasattr(state, column):
            setattr(state, column, value)
    if (
        reactivated
        and state.period_start <= book.now < state.period_end
        and _opened_by_cycle(book.conn, state.id, state.period_start)
    ):
        # a period already ended is the cycle's to close; this one's credit is due now
        amount = None
        if plan_credit is not None:
            amount = plan_credit(book.conn, state.id, state.plan, state.period_start)
        issue_free_credit(book, state, state.period_start, state.period_end, amount)
    result = AccountResult(get_account(book.conn, state.id), state.balances(book.now))
    book.remember(state.id, key, operation, fp, to_json(result))
    return result


def _opened_by_cycle(conn: sa.Connection, account_id: int, period_start: int) -> bool:
    """Whether the period starting at ``period_start`` began after the account was created.

    Only such a period can have been skipped by the cycle (status not active at its start).
    An account is active when created, and its creation issued that period's free credit
    from the plan it had then, so a plan changed since applies from the next period even
    across a lapse and a reactivation in between.
    """
    created = conn.execute(
        sa.select(accounts.c.created_at).where(accounts.c.id == account_id)
    ).scalar()
    return created is not None and created < period_start


def read_balance(conn: sa.Connection, account_id: int, now: int) -> Balance:
    """The account's balances at ``now`` without locking anything."""
    row = conn.execute(_ACCOUNT, {"account_id": account_id}).first()
    if row is None:
        raise AccountNotFoundError(f"there is no account {account_id}", account_id=account_id)
    state = account_state(row)
    for g in conn.execute(LIVE_GRANTS, {"account_id": account_id}):
        state.grants[g.g_id] = live_grant(g)
    period = state.period_at(now)
    used = conn.execute(
        sa.select(usage_periods.c.paid_used).where(
            usage_periods.c.account_id == account_id, usage_periods.c.period_start == period
        )
    ).scalar()
    # every free grant `free` counts (free monthly and promotional): the first to lapse. A
    # grant that lapsed while a hold reserves part of it still counts that part (`balances`),
    # so its expiry, already past, is the one shown (it was null: "never expires")
    free_expiry = [
        g.expires_at
        for g in state.grants.values()
        if not g.paid and (g.usable(now) or g.held > 0) and g.expires_at is not None
    ]
    b = state.balances(now)
    start, end = (
        (state.period_start, state.period_end)
        if state.period_start <= now < state.period_end
        else period_bounds_micros(state.anchor_at, now)
    )
    return Balance(
        account_id=account_id,
        free=b.free,
        free_expires_at=from_micros(min(free_expiry)) if free_expiry else None,
        paid=b.paid,
        held=b.held,
        available=b.available,
        monthly_limit=state.monthly_limit,
        period_usage=used or 0,
        period_start=from_micros(start),
        period_end=from_micros(end),
    )


def list_grants(conn: sa.Connection, account_id: int, live_only: bool = False) -> list[Any]:
    """The account's grants (rows), in consumption order."""
    query = sa.select(grants).where(grants.c.account_id == account_id)
    if live_only:
        query = query.where(GRANT_LIVE)
    rows = list(conn.execute(query))
    return sorted(
        rows,
        key=lambda g: (
            g.priority,
            g.expires_at is None,
            g.expires_at or 0,
            g.effective_at,
            g.id,
        ),
    )
