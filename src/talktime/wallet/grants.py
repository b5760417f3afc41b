"""Grants: issuing credit (purchased, promotional, refund, the monthly free credit), expiring
what is left of expired grants, and refunding unspent purchased credit.

Every function works inside a `Book`, so the recharge and cycle code can compose them in one
transaction with other work.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from talktime.store.tables import constant
from talktime.store.wallet_tables import grants, ledger, plans
from talktime.wallet import outbox
from talktime.wallet.book import (
    AccountState,
    Book,
    LiveGrant,
    check_amount,
    check_text,
    insert_id,
    new_transaction_id,
)
from talktime.wallet.errors import (
    GrantNotFoundError,
    IdempotencyConflictError,
    InvalidRequestError,
    PlanNotFoundError,
    RefundNotAllowedError,
)
from talktime.wallet.idempotency import fingerprint
from talktime.wallet.model import (
    DEFAULT_PRIORITY,
    EXPIRY,
    GRANT,
    GRANT_KINDS,
    REFUND,
    Grant,
    GrantResult,
    RefundResult,
    from_json,
    to_json,
)
from talktime.wallet.periods import from_micros, to_micros


def plan_free_credit(conn: sa.Connection, plan: str) -> int:
    """The monthly free credit of ``plan`` from the plans table (`PlanNotFoundError` if none)."""
    amount = conn.execute(
        sa.select(plans.c.monthly_free_credit).where(plans.c.name == plan)
    ).scalar()
    if amount is None:
        raise PlanNotFoundError(
            f"there is no plan {plan!r}; add it with its monthly free credit first", plan=plan
        )
    return int(amount)


def insert_grant(
    book: Book,
    state: AccountState,
    kind: str,
    amount: int,
    *,
    transaction_id: str,
    expires_at: int | None = None,
    effective_at: int | None = None,
    priority: int | None = None,
    period_start: int | None = None,
    source: str | None = None,
    key: str | None = None,
    entry_kind: str = GRANT,
) -> Grant:
    """Insert a grant and its issuing ledger entry (``entry_kind``: `grant` or `recharge`).

    No idempotency here: callers guard with a key (`issue`) or a unique period (free credit).
    """
    if kind not in GRANT_KINDS:
        raise InvalidRequestError(
            f"grant kind {kind!r} is not one of {', '.join(GRANT_KINDS)}", kind=kind
        )
    check_amount(amount)  # a plan without free credit issues no grant at all
    effective = book.now if effective_at is None else effective_at
    if expires_at is not None and expires_at <= effective:
        raise InvalidRequestError(
            "a grant must expire after it becomes effective", expires_at=from_micros(expires_at)
        )
    prio = DEFAULT_PRIORITY[kind] if priority is None else priority
    values = {
        "account_id": state.id,
        "kind": kind,
        "original": amount,
        "remaining": amount,
        "held": 0,
        "priority": prio,
        "effective_at": effective,
        "expires_at": expires_at,
        "period_start": period_start,
        "source": source,
        "created_at": book.now,
    }
    grant_id = insert_id(book.conn, sa.insert(grants).values(values))
    live = LiveGrant(grant_id, kind, amount, 0, prio, effective, expires_at)
    book.add_grant(state, live)
    book.entry(transaction_id, state.id, grant_id, amount, entry_kind, reference=source, key=key)
    return Grant(
        id=grant_id,
        account_id=state.id,
        kind=kind,
        original=amount,
        remaining=amount,
        held=0,
        priority=prio,
        effective_at=from_micros(effective),
        expires_at=None if expires_at is None else from_micros(expires_at),
        period_start=None if period_start is None else from_micros(period_start),
        source=source,
    )


def issue(
    book: Book,
    account_id: int,
    kind: str,
    amount: int,
    key: str,
    *,
    expires_at: datetime | None = None,
    effective_at: datetime | None = None,
    priority: int | None = None,
    source: str | None = None,
    entry_kind: str = GRANT,
) -> GrantResult:
    """Idempotently grant credit to an account (purchased, promotional, refund...).

    Free monthly credit is not granted this way: the cycle issues it from the plan, for one
    period (`issue_free_credit`). Priority 0 is free monthly credit's, so it is always used
    first: another kind of grant takes 1 or more."""
    if kind == "free_monthly":
        raise InvalidRequestError(
            "free monthly credit comes only from the account's plan, one period at a time "
            "(the monthly cycle issues it); grant `promotional` credit with an expiry instead",
            kind=kind,
        )
    if priority == 0:
        raise InvalidRequestError(
            "priority 0 is free monthly credit's, so it is always used first; give this grant "
            "a priority of 1 or more (lower is used first)",
            priority=priority,
        )
    check_text(source, "source")
    state = book.account(account_id, key)
    fp, *older = grant_fingerprints(kind, amount, expires_at, effective_at, priority, source)
    stored = _replay_grant(book, state.id, key, fp, older)
    if stored is not None:
        return from_json(GrantResult, stored, replayed=True)
    _check_not_expired(book, expires_at)
    transaction_id = new_transaction_id()
    grant = insert_grant(
        book,
        state,
        kind,
        amount,
        transaction_id=transaction_id,
        expires_at=None if expires_at is None else to_micros(expires_at),
        effective_at=None if effective_at is None else to_micros(effective_at),
        priority=priority,
        source=source,
        key=key,
        entry_kind=entry_kind,
    )
    result = GrantResult(transaction_id, grant, state.balances(book.now))
    book.remember(state.id, key, "grant", fp, to_json(result))
    return result


def _replay_grant(
    book: Book, account_id: int, key: str, fingerprint_: str, older: list[str]
) -> str | None:
    """The stored response of the grant under ``key``, matched on ``fingerprint_`` or, for a
    record an earlier version wrote, on one of the ``older`` forms of the same request."""
    try:
        return book.replay(account_id, key, "grant", fingerprint_)
    except IdempotencyConflictError:
        for other in older:
            with contextlib.suppress(IdempotencyConflictError):
                return book.replay(account_id, key, "grant", other)
        raise


def grant_fingerprints(
    kind: str,
    amount: int,
    expires_at: datetime | None,
    effective_at: datetime | None,
    priority: int | None,
    source: str | None,
) -> list[str]:
    """The fingerprints a stored record of this grant request may carry, the one to store
    first. A priority equal to the kind's default is the same request as none (it is stored
    as none, as a request leaving it out always was); the other forms match records written
    before 1 Dec with the explicit default, or before times were fingerprinted in UTC."""
    default = DEFAULT_PRIORITY.get(kind)
    priorities = [None, default] if priority in (None, default) else [priority]
    found: list[str] = []
    for utc in (True, False):
        for prio in priorities:
            fp = _grant_fingerprint(kind, amount, expires_at, effective_at, prio, source, utc=utc)
            if fp not in found:
                found.append(fp)
    return found


def _check_not_expired(book: Book, expires_at: datetime | None) -> None:
    """Refuse a new grant that has expired by now: the expiry job would write it off at once.
    (Checked after the replay: a grant that expired since it was issued still replays.)"""
    if expires_at is None or to_micros(expires_at) > book.now:
        return
    raise InvalidRequestError(
        f"a grant must expire after now ({book.now_datetime.isoformat()}); this one expires at "
        f"{expires_at.astimezone(UTC).isoformat()}, so its credit would be written off at once: "
        "give an expires_at in the future, or none",
        expires_at=expires_at,
    )


def _grant_fingerprint(
    kind: str,
    amount: int,
    expires_at: datetime | None,
    effective_at: datetime | None,
    priority: int | None,
    source: str | None,
    *,
    utc: bool,
) -> str:
    """The fingerprint of a grant request; with ``utc`` its times are written in UTC, so the
    same instant given with another offset is the same request (before, it was an
    `idempotency_conflict`). A UTC time is written the same either way."""

    def text(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return (moment.astimezone(UTC) if utc else moment).isoformat()

    params = {
        "kind": kind,
        "amount": amount,
        "expires_at": text(expires_at),
        "effective_at": text(effective_at),
        "priority": priority,
        "source": source,
    }
    return fingerprint("grant", params)


def issue_free_credit(
    book: Book,
    state: AccountState,
    period_start: int,
    period_end: int,
    amount: int | None = None,
) -> Grant | None:
    """Issue the plan's free monthly credit for the period ``[period_start, period_end)``,
    effective at its start and expiring at its end, with a `free_credit.granted` event.
    ``amount`` is the plan's credit when the caller knows it (else the plans table's).

    Returns None (and changes nothing) if that period's free credit was already issued or
    the plan has none.
    """
    exists = book.conn.execute(
        sa.select(grants.c.id).where(
            grants.c.account_id == state.id,
            grants.c.kind == constant("free_monthly"),
            grants.c.period_start == period_start,
        )
    ).first()
    if exists is not None:
        return None
    if amount is None:
        amount = plan_free_credit(book.conn, state.plan)
    if amount == 0:  # a plan without free credit: no empty grant, entry or event
        return None
    grant = insert_grant(
        book,
        state,
        "free_monthly",
        amount,
        transaction_id=new_transaction_id(),
        expires_at=period_end,
        effective_at=period_start,
        period_start=period_start,
        source=f"plan:{state.plan}",
    )
    book.event(
        state.id,
        outbox.FREE_CREDIT_GRANTED,
        {
            "grant_id": grant.id,
            "amount": amount,
            "plan": state.plan,
            "period_start": from_micros(period_start).isoformat(),
            "expires_at": from_micros(period_end).isoformat(),
        },
    )
    return grant


def expire(book: Book, state: AccountState) -> int:
    """Write an `expiry` entry for the unreserved credit left on each expired grant of the
    account (free monthly credit also queues `free_credit.expired`); returns the amount.

    `balance.low` / `credit.depleted` are queued as for a charge when the
    available credit fell under the threshold / to zero at a grant's `expires_at` (judged on
    the ledger as it stood then, so a charge since, which judged its own drop, is not judged
    twice). The period's free monthly credit, expiring at the end of the account's current
    period, counts as still there: the cycle judges its drop once the new period's credit is in.
    """
    expired, moments = expire_parts(book, state)
    judge_lapses(book, state, moments)
    return expired


def lapse_moment(state: AccountState, g: LiveGrant, now: int) -> int | None:
    """``g``'s `expires_at` when it lapsed by ``now`` with unreserved credit not yet expired
    whose drop is judged on expiry (not the period's free credit: the cycle judges that)."""
    if g.expires_at is None or g.expires_at > now or g.available <= 0:
        return None
    if g.kind == "free_monthly" and g.expires_at == state.period_end:
        return None
    return g.expires_at


def judge_lapses(book: Book, state: AccountState, moments: list[int]) -> None:
    """`balance.low` / `credit.depleted` for the drops at each of ``moments`` (each once)."""
    for moment in sorted(set(moments)):
        before, after = available_around(book.conn, state, moment)
        book.debit_events(state, before, after)


def expire_parts(book: Book, state: AccountState) -> tuple[int, list[int]]:
    """Expire as `expire` does, without the balance events; returns everything expired and the
    `expires_at` of the lapses to judge (`lapse_moment`: not the free monthly credit expiring
    at the end of the account's current period), ascending, each once."""
    expired = 0
    moments: set[int] = set()
    for g in sorted(state.grants.values(), key=LiveGrant.order_key):
        moment = lapse_moment(state, g, book.now)
        expired += expire_grant(book, state, g)
        if moment is not None:
            moments.add(moment)
    return expired, sorted(moments)


def available_around(
    conn: sa.Connection, state: AccountState, moment: int, *, keep_period_free: bool = True
) -> tuple[int, int]:
    """The account's available credit just before ``moment`` and at it, from the ledger entries
    written before it. With ``keep_period_free``, the free monthly credit expiring at the end
    of the account's current period counts as still there (the cycle judges that drop)."""
    kept_before, kept_at, before, at = available_around_both(conn, state, moment)
    return (kept_before, kept_at) if keep_period_free else (before, at)


def available_around_both(
    conn: sa.Connection, state: AccountState, moment: int
) -> tuple[int, int, int, int]:
    """`available_around` with and without ``keep_period_free``, in one read of the account's
    entries before ``moment`` (that read grows with the account's ledger: the cycle reads once).
    Returns (kept before, kept at, before, at).

    Summed per grant in SQL (a grant's entries never add up to more than its original amount)
    and across grants in Python: one SUM over an account holding more than 2**63 micro-units
    overflowed on SQLite, and the cycle then stopped for every account."""
    g, entry = grants, ledger
    stays = sa.and_(g.c.kind == constant("free_monthly"), g.c.expires_at == state.period_end)

    def usable(before: bool, keep: bool) -> sa.ColumnElement[bool]:
        started = g.c.effective_at < moment if before else g.c.effective_at <= moment
        lasts = g.c.expires_at >= moment if before else g.c.expires_at > moment
        alive = [g.c.expires_at.is_(None), lasts, *([stays] if keep else [])]
        return sa.and_(started, sa.or_(*alive))

    def total(condition: sa.ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, entry.c.amount), else_=0)), 0)

    rows = conn.execute(
        sa.select(
            total(usable(True, True)),
            total(usable(False, True)),
            total(usable(True, False)),
            total(usable(False, False)),
        )
        .select_from(entry.join(g, g.c.id == entry.c.grant_id))
        .where(entry.c.account_id == state.id, entry.c.created_at < moment)
        .group_by(g.c.id)
    ).all()
    sums = [sum(int(row[i]) for row in rows) for i in range(4)]
    return sums[0], sums[1], sums[2], sums[3]


def expire_grant(book: Book, state: AccountState, g: LiveGrant) -> int:
    """Expire the unreserved credit left on ``g`` if it has expired; returns the amount."""
    if g.expires_at is None or g.expires_at > book.now or g.available <= 0:
        return 0
    amount = g.available
    g.remaining -= amount
    book.entry(new_transaction_id(), state.id, g.id, -amount, EXPIRY)
    if g.kind == "free_monthly":
        book.event(state.id, outbox.FREE_CREDIT_EXPIRED, {"grant_id": g.id, "amount": amount})
    return amount


def refundable(kind: str, remaining: int, held: int, expires_at: int | None, now: int) -> int:
    """What `refund` can take back from a grant at ``now``: its credit no hold reserves when
    it is purchased and not expired, else nothing."""
    if kind != "purchased" or (expires_at is not None and expires_at <= now):
        return 0
    return remaining - held


def refund(book: Book, account_id: int, grant_id: int, amount: int, key: str) -> RefundResult:
    """Take back ``amount`` of unspent, unexpired, unreserved purchased credit from a grant
    (the caller pays it back through the payment provider). A grant not yet effective is
    unspent in full: no charge or hold can have touched it."""
    check_amount(amount)
    state = book.account(account_id, key)
    fp = fingerprint("refund", {"grant_id": grant_id, "amount": amount})
    stored = book.replay(state.id, key, "refund", fp)
    if stored is not None:
        return from_json(RefundResult, stored, replayed=True)
    g = book.grant(state, grant_id)
    if g is None:
        raise GrantNotFoundError(
            f"account {state.id} has no grant {grant_id}", account_id=state.id, grant_id=grant_id
        )
    if g.kind != "purchased":
        raise RefundNotAllowedError(
            f"grant {grant_id} is {g.kind} credit; only purchased credit can be refunded",
            grant_id=grant_id,
        )
    unspent = refundable(g.kind, g.remaining, g.held, g.expires_at, book.now)
    if amount > unspent:
        raise RefundNotAllowedError(
            f"grant {grant_id} has {state.shown(unspent)} of unspent credit that can be "
            f"refunded, less than the {state.shown(amount)} asked",
            grant_id=grant_id,
            refundable=unspent,
            needed=amount,
        )
    transaction_id = new_transaction_id()
    before = state.available(book.now)
    g.remaining -= amount
    book.entry(transaction_id, state.id, g.id, -amount, REFUND, key=key)
    book.debit_events(state, before)
    result = RefundResult(transaction_id, state.id, grant_id, amount, state.balances(book.now))
    book.remember(state.id, key, "refund", fp, to_json(result))
    return result
