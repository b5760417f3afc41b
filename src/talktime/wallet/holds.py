"""Holds: reserve credit across grants (authorize, extend), then settle the actual amount,
void, or let the periodic job expire them.

A hold's reservation is kept per grant in `hold_allocations` and on each grant's `held`.
Settling never drives a balance below zero: a shortfall beyond the hold and the available
credit becomes an explicit `uncollected` ledger entry and a `charge.uncollected` event.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from talktime.store.tables import constant
from talktime.store.wallet_tables import hold_allocations, holds
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
    HoldNotFoundError,
    HoldNotPendingError,
    InsufficientCreditError,
    InvalidRequestError,
)
from talktime.wallet.grants import expire_grant, judge_lapses, lapse_moment
from talktime.wallet.idempotency import fingerprint
from talktime.wallet.inputs import encode_lines
from talktime.wallet.model import (
    HOLD,
    HOLD_RELEASE,
    UNCOLLECTED,
    USAGE,
    Hold,
    HoldResult,
    SettleResult,
    from_json,
    to_json,
)
from talktime.wallet.periods import from_micros

_HOLD = sa.select(
    holds.c.id,
    holds.c.account_id,
    holds.c.amount,
    holds.c.state,
    holds.c.expires_at,
    holds.c.reference,
    holds.c.created_at,
).where(holds.c.id == sa.bindparam("hold_id"))


def _hold(book: Book, hold_id: int) -> tuple[AccountState, Any]:
    """Lock the hold's account, then read the hold (its state may have changed meanwhile)."""
    if isinstance(hold_id, bool) or not isinstance(hold_id, int):
        raise HoldNotFoundError(f"hold id must be an int, not {hold_id!r}")
    row = book.conn.execute(_HOLD, {"hold_id": hold_id}).first()
    if row is None:
        raise HoldNotFoundError(f"there is no hold {hold_id}", hold_id=hold_id)
    state = book.account(row.account_id)
    return state, book.conn.execute(_HOLD, {"hold_id": hold_id}).first()


def _as_hold(row: Any, **changes: Any) -> Hold:
    values = dict(row._mapping) | changes
    return Hold(
        id=values["id"],
        account_id=values["account_id"],
        amount=values["amount"],
        state=values["state"],
        expires_at=from_micros(values["expires_at"]),
        reference=values["reference"],
        created_at=from_micros(values["created_at"]),
    )


def _allocations(book: Book, hold_id: int) -> dict[int, int]:
    rows = book.conn.execute(
        sa.select(hold_allocations.c.grant_id, hold_allocations.c.amount).where(
            hold_allocations.c.hold_id == hold_id
        )
    )
    return {r.grant_id: r.amount for r in rows}


def _reserve_plan(book: Book, state: AccountState, amount: int) -> list[tuple[LiveGrant, int]]:
    live = state.live(book.now)
    available = sum(g.available for g in live)
    if amount > available:
        raise InsufficientCreditError(
            f"reserving {state.shown(amount)} needs more than the {state.shown(available)} "
            "available; add credit and try again (nothing was reserved)",
            needed=amount,
            available=available,
        )
    takes = book.plan(live, amount)
    book.check_limit(state, sum(t for g, t in takes if g.paid))
    return takes


def _reserve(
    book: Book,
    state: AccountState,
    hold_id: int,
    takes: list[tuple[LiveGrant, int]],
    existing: dict[int, int],
    transaction_id: str,
    key: str,
) -> None:
    if takes:
        book.debited(state)
    for g, take in takes:
        g.held += take
        book.entry(transaction_id, state.id, g.id, -take, HOLD, hold_id=hold_id, key=key)
        if g.id in existing:
            book.conn.execute(
                sa.update(hold_allocations)
                .where(hold_allocations.c.hold_id == hold_id, hold_allocations.c.grant_id == g.id)
                .values(amount=existing[g.id] + take)
            )
        else:
            book.conn.execute(
                sa.insert(hold_allocations).values(
                    hold_id=hold_id, grant_id=g.id, account_id=state.id, amount=take
                )
            )


def _release(
    book: Book,
    state: AccountState,
    hold_id: int,
    allocations: dict[int, int],
    transaction_id: str,
    key: str | None,
) -> list[LiveGrant]:
    """Give back every reservation of the hold; returns the grants in consumption order."""
    released = []
    for grant_id, amount in allocations.items():
        g = book.grant(state, grant_id)
        assert g is not None, f"hold {hold_id} reserves missing grant {grant_id}"
        g.held -= amount
        if amount:
            book.entry(
                transaction_id, state.id, g.id, amount, HOLD_RELEASE, hold_id=hold_id, key=key
            )
        released.append(g)
    book.conn.execute(sa.delete(hold_allocations).where(hold_allocations.c.hold_id == hold_id))
    return sorted(released, key=LiveGrant.order_key)


def authorize(
    book: Book,
    account_id: int,
    amount: int,
    key: str,
    ttl_micros: int,
    reference: str | None = None,
    *,
    allow_zero: bool = False,
) -> HoldResult:
    """Reserve ``amount`` (all or nothing) until now + ttl; returns the pending hold.

    ``allow_zero`` admits an empty hold (a call whose held leg is free), settled later like
    any other.
    """
    check_amount(amount, allow_zero=allow_zero)
    check_text(reference, "reference")
    if ttl_micros <= 0:
        raise InvalidRequestError("a hold's time to live must be positive")
    state = book.account(account_id, key)
    fp = fingerprint("authorize", {"amount": amount, "ttl": ttl_micros, "reference": reference})
    stored = book.replay(state.id, key, "authorize", fp)
    if stored is not None:
        return from_json(HoldResult, stored, replayed=True)
    before = state.available(book.now)
    takes = _reserve_plan(book, state, amount)
    expires_at = book.now + ttl_micros
    values = {
        "account_id": state.id,
        "amount": amount,
        "state": "pending",
        "expires_at": expires_at,
        "reference": reference,
        "created_at": book.now,
    }
    hold_id = insert_id(book.conn, sa.insert(holds).values(values))
    transaction_id = new_transaction_id()
    _reserve(book, state, hold_id, takes, {}, transaction_id, key)
    book.debit_events(state, before)
    hold = Hold(
        id=hold_id,
        account_id=state.id,
        amount=amount,
        state="pending",
        expires_at=from_micros(expires_at),
        reference=reference,
        created_at=from_micros(book.now),
    )
    result = HoldResult(transaction_id, hold, state.balances(book.now))
    book.remember(state.id, key, "authorize", fp, to_json(result))
    return result


def extend(
    book: Book, hold_id: int, amount: int, key: str, ttl_micros: int | None = None
) -> HoldResult:
    """Reserve ``amount`` more on a pending hold (all or nothing); with ``ttl_micros`` also move
    its deadline to now + ttl (a positive one, as `authorize` takes: a ttl of zero or less
    would end the hold's reservation at once)."""
    check_amount(amount, allow_zero=ttl_micros is not None)
    if ttl_micros is not None and ttl_micros <= 0:
        raise InvalidRequestError("a hold's time to live must be positive")
    state, row = _hold(book, hold_id)
    fp = fingerprint("extend", {"hold_id": hold_id, "amount": amount, "ttl": ttl_micros})
    stored = book.replay(state.id, key, "extend", fp)
    if stored is not None:
        return from_json(HoldResult, stored, replayed=True)
    if row.state != "pending" or row.expires_at <= book.now:
        # past its deadline it is expired, whether or not the expiry job closed it yet
        shown = "expired" if row.state == "pending" else row.state
        raise HoldNotPendingError(
            f"hold {hold_id} is {shown} and cannot be extended; authorize a new hold",
            hold_id=hold_id,
            state=shown,
        )
    before = state.available(book.now)
    takes = _reserve_plan(book, state, amount) if amount else []
    transaction_id = new_transaction_id()
    _reserve(book, state, hold_id, takes, _allocations(book, hold_id), transaction_id, key)
    expires_at = row.expires_at if ttl_micros is None else book.now + ttl_micros
    book.conn.execute(
        sa.update(holds)
        .where(holds.c.id == hold_id)
        .values(amount=row.amount + amount, expires_at=expires_at)
    )
    book.debit_events(state, before)
    hold = _as_hold(row, amount=row.amount + amount, expires_at=expires_at)
    result = HoldResult(transaction_id, hold, state.balances(book.now))
    book.remember(state.id, key, "extend", fp, to_json(result))
    return result


def settle(
    book: Book,
    hold_id: int,
    actual: int,
    key: str,
    lines: Any = None,
) -> SettleResult:
    """Charge the actual amount against the hold and release the rest.

    The hold's own reservations are used first, then other available credit in consumption
    order; what neither covers is recorded as `uncollected` (entry and event), never as a
    negative balance. A hold the periodic job already expired can still be settled.
    """
    check_amount(actual, allow_zero=True)
    lines_json = encode_lines(lines)
    state, row = _hold(book, hold_id)
    fp = fingerprint("settle", {"hold_id": hold_id, "actual": actual, "lines": lines})
    stored = book.replay(state.id, key, "settle", fp)
    if stored is not None:
        return from_json(SettleResult, stored, replayed=True)
    if row.state not in ("pending", "expired"):
        raise HoldNotPendingError(
            f"hold {hold_id} is already {row.state}", hold_id=hold_id, state=row.state
        )
    now = book.now
    before = state.available(now)
    transaction_id = new_transaction_id()
    allocations = _allocations(book, hold_id)
    released = _release(book, state, hold_id, allocations, transaction_id, key)
    rest = actual
    paid = 0
    sources = [(g, allocations[g.id]) for g in released] + [
        (g, g.available) for g in state.live(now)
    ]
    taken: dict[int, int] = {}
    for g, cap in sources:
        take = min(cap, g.available, rest)
        if take <= 0:
            continue
        g.remaining -= take
        rest -= take
        paid += take if g.paid else 0
        taken[g.id] = taken.get(g.id, 0) + take
    for grant_id, take in taken.items():  # one entry per grant touched
        book.entry(
            transaction_id,
            state.id,
            grant_id,
            -take,
            USAGE,
            hold_id=hold_id,
            reference=row.reference,
            key=key,
            lines_json=lines_json,
        )
    if rest:
        book.entry(
            transaction_id,
            state.id,
            None,
            -rest,
            UNCOLLECTED,
            hold_id=hold_id,
            reference=row.reference,
            key=key,
            lines_json=lines_json,
        )
        book.event(
            state.id,
            outbox.CHARGE_UNCOLLECTED,
            {"hold_id": hold_id, "actual": actual, "uncollected": rest, "reference": row.reference},
        )
    for g in released:
        expire_grant(book, state, g)
    book.add_usage(state, paid)
    if actual:
        book.debited(state)
    book.debit_events(state, before)
    book.conn.execute(
        sa.update(holds).where(holds.c.id == hold_id).values(state="settled", closed_at=now)
    )
    charged = actual - rest
    result = SettleResult(
        transaction_id=transaction_id,
        hold=_as_hold(row, state="settled"),
        actual=actual,
        charged=charged,
        from_free=charged - paid,
        from_paid=paid,
        uncollected=rest,
        balance=state.balances(now),
    )
    book.remember(state.id, key, "settle", fp, to_json(result))
    return result


def void(book: Book, hold_id: int, key: str) -> HoldResult:
    """Release the whole reservation of a pending hold without charging anything."""
    state, row = _hold(book, hold_id)
    fp = fingerprint("void", {"hold_id": hold_id})
    stored = book.replay(state.id, key, "void", fp)
    if stored is not None:
        return from_json(HoldResult, stored, replayed=True)
    if row.state != "pending":
        raise HoldNotPendingError(
            f"hold {hold_id} is already {row.state}", hold_id=hold_id, state=row.state
        )
    transaction_id = new_transaction_id()
    _close(book, state, row, "voided", transaction_id, key)
    result = HoldResult(transaction_id, _as_hold(row, state="voided"), state.balances(book.now))
    book.remember(state.id, key, "void", fp, to_json(result))
    return result


def expire_hold(book: Book, hold_id: int) -> bool:
    """Release a pending hold whose deadline has passed; False if it is not (or no longer) due."""
    state, row = _hold(book, hold_id)
    if row.state != "pending" or row.expires_at > book.now:
        return False
    _close(book, state, row, "expired", new_transaction_id(), None)
    return True


def due_holds(conn: sa.Connection, now: int, limit: int = 1000) -> list[int]:
    """Ids of pending holds past their deadline (uses the partial index on pending holds)."""
    rows = conn.execute(
        sa.select(holds.c.id)
        .where(holds.c.state == constant("pending"), holds.c.expires_at <= now)
        .order_by(holds.c.expires_at, holds.c.id)
        .limit(limit)
    )
    return [r.id for r in rows]


def _close(
    book: Book, state: AccountState, row: Any, new_state: str, transaction_id: str, key: str | None
) -> None:
    allocations = _allocations(book, row.id)
    # a lapsed grant whose unreserved rest the expiry job has not expired yet: its drop at
    # `expires_at` is judged here, as the job would have
    lapses = [
        moment
        for g in (book.grant(state, grant_id) for grant_id in allocations)
        if g is not None and (moment := lapse_moment(state, g, book.now)) is not None
    ]
    released = _release(book, state, row.id, allocations, transaction_id, key)
    for g in released:
        expire_grant(book, state, g)
    if lapses:
        judge_lapses(book, state, lapses)
    book.conn.execute(
        sa.update(holds).where(holds.c.id == row.id).values(state=new_state, closed_at=book.now)
    )
