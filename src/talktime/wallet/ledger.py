"""Reading the ledger: entries of one account, newest first, with cursor pagination and filters.

Entries are written only through a `Book` and never updated or deleted.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from talktime.ids import MAX_ID
from talktime.paging import split_page
from talktime.store.wallet_tables import holds, ledger
from talktime.wallet.book import check_text
from talktime.wallet.errors import InvalidRequestError
from talktime.wallet.model import ENTRY_KINDS, LedgerEntry, LedgerPage
from talktime.wallet.periods import from_micros, to_micros

MAX_PAGE = 500
MAX_CURSOR = MAX_ID
"""The largest cursor taken (ledger ids stay far below; a larger number would overflow)."""


def list_entries(
    conn: sa.Connection,
    account_id: int,
    *,
    cursor: str | None = None,
    limit: int = 50,
    kind: str | None = None,
    reference: str | None = None,
    transaction_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> LedgerPage:
    """One page of an account's entries, newest first. ``cursor`` is the `next_cursor` of the
    previous page; ``since`` is inclusive, ``until`` exclusive."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequestError(f"a page holds 1 to {MAX_PAGE} entries, not {limit}")
    filters = {"kind": kind, "reference": reference, "transaction_id": transaction_id}
    for what, value in filters.items():
        check_text(value, what, limit=None)  # a filter may be long; it may not hold NUL
    if kind is not None and kind not in ENTRY_KINDS:
        # an unknown kind would match nothing: a typo read as "no entries"
        raise InvalidRequestError(
            f"kind {kind!r} is not a ledger entry kind; use one of {', '.join(ENTRY_KINDS)}"
        )
    if since is not None and until is not None and to_micros(until) <= to_micros(since):
        # an empty range is a mistake (the bounds swapped), not "no entries"
        raise InvalidRequestError("`until` must be after `since`")
    # a hold's entries carry its id, not its reference: they show (and are found by) the
    # reference of their hold, so a call's holds are listed with its other entries
    # The account as a range, the page ordered by (account, id): only the account's index
    # gives that order. With `account_id = ?` and `ORDER BY id` PostgreSQL, whenever a filter
    # made the account's entries look rare, walked the primary key backward over the whole
    # ledger (170 ms at 1.2 million entries, growing with the table; 55 ms this way, bounded
    # by the account's own entries). SQLite uses the account's index either way.
    query = (
        sa.select(ledger, holds.c.reference.label("hold_reference"))
        .select_from(ledger.outerjoin(holds, holds.c.id == ledger.c.hold_id))
        .where(ledger.c.account_id >= account_id, ledger.c.account_id <= account_id)
    )
    if cursor is not None:
        # ASCII digits only (str.isdigit also takes '²'), and no more than an id can hold
        if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_CURSOR:
            raise InvalidRequestError(f"cursor {cursor!r} is not one this API returned")
        query = query.where(ledger.c.id < int(cursor))
    if kind is not None:
        query = query.where(ledger.c.kind == kind)
    if reference is not None:
        query = query.where(sa.func.coalesce(ledger.c.reference, holds.c.reference) == reference)
    if transaction_id is not None:
        query = query.where(ledger.c.transaction_id == transaction_id)
    if since is not None:
        query = query.where(ledger.c.created_at >= to_micros(since))
    if until is not None:
        query = query.where(ledger.c.created_at < to_micros(until))
    ordered = query.order_by(ledger.c.account_id.desc(), ledger.c.id.desc())
    rows = list(conn.execute(ordered.limit(limit + 1)))
    page, next_cursor = split_page(rows, limit, lambda r: r.id)
    entries = tuple(
        LedgerEntry(
            id=r.id,
            transaction_id=r.transaction_id,
            account_id=r.account_id,
            grant_id=r.grant_id,
            hold_id=r.hold_id,
            amount=r.amount,
            kind=r.kind,
            reference=r.reference if r.reference is not None else r.hold_reference,
            idempotency_key=r.idempotency_key,
            lines=r.lines,
            created_at=from_micros(r.created_at),
        )
        for r in page
    )
    return LedgerPage(entries=entries, next_cursor=next_cursor)
