"""`verify`: check every wallet invariant over the whole database and name each breach.

Grants never negative and never reserve more than they hold; the ledger explains every grant's
balance and reservation; holds and their per-grant allocations agree; expired free credit was
expired; period usage counters match the paid usage in the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from talktime.store.wallet_tables import (
    accounts,
    grants,
    hold_allocations,
    holds,
    ledger,
    usage_periods,
)
from talktime.wallet.model import (
    BALANCE_ENTRY_KINDS,
    HOLD_ENTRY_KINDS,
    PAID_KINDS,
    UNCOLLECTED,
    USAGE,
)
from talktime.wallet.periods import period_bounds_micros


@dataclass(frozen=True)
class Breach:
    """One broken invariant on one account."""

    account_id: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"account {self.account_id}: {self.rule}: {self.detail}"


def verify(conn: sa.Connection, now: int) -> list[Breach]:
    """Every breach found in the database at ``now`` (an empty list when all holds)."""
    breaches: list[Breach] = []
    add = breaches.append

    grant_rows = {g.id: g for g in conn.execute(sa.select(grants))}
    balance_sums: dict[int, int] = defaultdict(int)
    hold_sums: dict[int, int] = defaultdict(int)
    sums = conn.execute(
        sa.select(
            ledger.c.account_id,
            ledger.c.grant_id,
            ledger.c.kind,
            sa.func.sum(ledger.c.amount).label("total"),
            sa.func.count().label("n"),
        ).group_by(ledger.c.account_id, ledger.c.grant_id, ledger.c.kind)
    )
    for row in sums:
        if row.grant_id is None:
            if row.kind != UNCOLLECTED:
                add(Breach(row.account_id, "entry_without_grant", f"{row.n} {row.kind} entries"))
            continue
        g = grant_rows.get(row.grant_id)
        if g is None or g.account_id != row.account_id:
            add(
                Breach(
                    row.account_id,
                    "entry_on_foreign_grant",
                    f"{row.n} {row.kind} entries name grant {row.grant_id} of another account",
                )
            )
            continue
        if row.kind in BALANCE_ENTRY_KINDS:
            balance_sums[row.grant_id] += int(row.total)
        elif row.kind in HOLD_ENTRY_KINDS:
            hold_sums[row.grant_id] += int(row.total)
        else:
            add(Breach(row.account_id, "unknown_entry_kind", f"{row.kind!r} on grant {g.id}"))

    allocated: dict[int, int] = defaultdict(int)
    hold_allocated: dict[int, int] = defaultdict(int)
    hold_rows = {h.id: h for h in conn.execute(sa.select(holds))}
    for a in conn.execute(sa.select(hold_allocations)):
        h = hold_rows.get(a.hold_id)
        if h is None or h.state != "pending":
            add(
                Breach(
                    a.account_id,
                    "allocation_on_closed_hold",
                    f"hold {a.hold_id} is {h.state if h else 'missing'} but still reserves "
                    f"{a.amount} on grant {a.grant_id}",
                )
            )
        allocated[a.grant_id] += a.amount
        hold_allocated[a.hold_id] += a.amount
    for h in hold_rows.values():
        if h.state == "pending" and hold_allocated[h.id] != h.amount:
            add(
                Breach(
                    h.account_id,
                    "hold_allocations_mismatch",
                    f"hold {h.id} is for {h.amount} but its grants reserve {hold_allocated[h.id]}",
                )
            )

    for g in grant_rows.values():
        who = g.account_id
        if g.remaining < 0 or g.held < 0:
            add(
                Breach(
                    who, "negative_balance", f"grant {g.id}: remaining {g.remaining}, held {g.held}"
                )
            )
        if g.held > g.remaining:
            add(Breach(who, "over_reserved", f"grant {g.id} reserves {g.held} of {g.remaining}"))
        if g.remaining > g.original:
            add(Breach(who, "over_original", f"grant {g.id}: {g.remaining} > {g.original}"))
        if balance_sums[g.id] != g.remaining:
            add(
                Breach(
                    who,
                    "ledger_balance_mismatch",
                    f"grant {g.id} holds {g.remaining} but its entries sum to {balance_sums[g.id]}",
                )
            )
        if -hold_sums[g.id] != g.held:
            add(
                Breach(
                    who,
                    "ledger_hold_mismatch",
                    f"grant {g.id} reserves {g.held} but its hold entries sum to "
                    f"{-hold_sums[g.id]}",
                )
            )
        if allocated[g.id] != g.held:
            add(
                Breach(
                    who,
                    "hold_allocations_mismatch",
                    f"grant {g.id} reserves {g.held} but holds allocate {allocated[g.id]}",
                )
            )
        if (
            g.kind == "free_monthly"
            and g.expires_at is not None
            and g.expires_at <= now
            and g.remaining != g.held
        ):
            add(
                Breach(
                    who,
                    "free_credit_not_expired",
                    f"free credit grant {g.id} expired but still holds {g.remaining - g.held}",
                )
            )

    breaches.extend(_check_usage(conn))
    return breaches


def _check_usage(conn: sa.Connection) -> list[Breach]:
    """Period usage counters equal the paid credit used in each period.

    The paid grants are joined in SQL, not listed as parameters: a database with more paid
    grants than a statement can bind (65,535 on PostgreSQL) is still read in one statement.
    """
    anchors = {
        a.id: a.anchor_at for a in conn.execute(sa.select(accounts.c.id, accounts.c.anchor_at))
    }
    used: dict[tuple[int, int], int] = defaultdict(int)
    last: dict[int, tuple[int, int]] = {}  # account -> the period of its previous entry
    rows = conn.execution_options(yield_per=10_000).execute(
        sa.select(ledger.c.account_id, ledger.c.amount, ledger.c.created_at)
        .select_from(ledger.join(grants, grants.c.id == ledger.c.grant_id))
        .where(ledger.c.kind == USAGE, grants.c.kind.in_(sorted(PAID_KINDS)))
    )
    for r in rows:
        who, at = r.account_id, r.created_at
        bounds = last.get(who)
        if bounds is None or not bounds[0] <= at < bounds[1]:
            if who not in anchors:
                continue  # an entry of no account: reported by the grant checks
            bounds = last[who] = period_bounds_micros(anchors[who], at)
        used[(who, bounds[0])] -= r.amount
    counted = {
        (u.account_id, u.period_start): u.paid_used for u in conn.execute(sa.select(usage_periods))
    }
    return [
        Breach(
            account_id,
            "usage_counter_mismatch",
            f"period starting {period}: counter {counted.get((account_id, period), 0)}, "
            f"ledger {used.get((account_id, period), 0)}",
        )
        for account_id, period in sorted(set(used) | set(counted))
        if used.get((account_id, period), 0) != counted.get((account_id, period), 0)
    ]
