"""`verify`: check every wallet invariant over the whole database and name each breach.

Grants never negative and never reserve more than they hold; the ledger explains every grant's
issue, balance and reservation, per grant and per hold, with each kind of entry on its own side
of zero; holds and their per-grant allocations agree, within one account; expired free credit
was expired and free monthly credit lasts exactly its period; period usage counters match the
paid usage in the ledger; no idempotency key charged twice; every priced line names its rate.
The ledger is read in one aggregate pass, one pass over usage, one grouped by key and one over
the entries that carry priced lines.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from talktime.money import format as _m  # amounts as decimal strings, as everywhere
from talktime.store.wallet_tables import (
    accounts,
    grants,
    hold_allocations,
    holds,
    ledger,
    usage_periods,
)
from talktime.wallet.idempotency import RETENTION_MICROS
from talktime.wallet.inputs import lines_name_their_rates
from talktime.wallet.model import (
    BALANCE_ENTRY_KINDS,
    EXPIRY,
    GRANT,
    HOLD,
    HOLD_ENTRY_KINDS,
    HOLD_RELEASE,
    PAID_KINDS,
    RECHARGE,
    REFUND,
    UNCOLLECTED,
    USAGE,
)
from talktime.wallet.periods import from_micros, period_bounds_micros

ISSUE_KINDS = frozenset({GRANT, RECHARGE})
"""The entry that issues a grant: exactly one per grant, for its `original` amount."""
POSITIVE_KINDS = frozenset({GRANT, RECHARGE, HOLD_RELEASE})
NEGATIVE_KINDS = frozenset({USAGE, EXPIRY, REFUND, HOLD, UNCOLLECTED})


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

    anchors = {
        a.id: a.anchor_at for a in conn.execute(sa.select(accounts.c.id, accounts.c.anchor_at))
    }
    grant_rows = {g.id: g for g in conn.execute(sa.select(grants))}
    hold_rows = {
        h.id: h
        for h in conn.execute(
            sa.select(holds.c.id, holds.c.account_id, holds.c.amount, holds.c.state)
        )
    }
    balance_sums: dict[int, int] = defaultdict(int)
    hold_sums: dict[int, int] = defaultdict(int)
    issued: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # grant -> [sum, count]
    reserved: dict[tuple[int, int], int] = defaultdict(int)  # (hold, grant) -> -hold entries
    sums = conn.execute(
        sa.select(
            ledger.c.account_id,
            ledger.c.grant_id,
            ledger.c.hold_id,
            ledger.c.kind,
            sa.func.sum(ledger.c.amount).label("total"),
            sa.func.count().label("n"),
            sa.func.min(ledger.c.amount).label("low"),
            sa.func.max(ledger.c.amount).label("high"),
            sa.func.min(ledger.c.created_at).label("first_at"),
        ).group_by(ledger.c.account_id, ledger.c.grant_id, ledger.c.hold_id, ledger.c.kind)
    )
    for row in sums:
        who, kind, total = row.account_id, row.kind, int(row.total)
        where = "no grant" if row.grant_id is None else f"grant {row.grant_id}"
        if row.hold_id is not None:
            where += f", hold {row.hold_id}"
        if (kind in POSITIVE_KINDS and row.low < 0) or (kind in NEGATIVE_KINDS and row.high > 0):
            add(
                Breach(
                    who,
                    "entry_sign",
                    f"{kind} entries ({where}) must be "
                    f"{'positive' if kind in POSITIVE_KINDS else 'negative'}; "
                    f"one is {_m(row.low if kind in POSITIVE_KINDS else row.high)}",
                )
            )
        if row.hold_id is not None:
            h = hold_rows.get(row.hold_id)
            if h is None or h.account_id != who:
                add(
                    Breach(
                        who,
                        "entry_on_foreign_hold",
                        f"{row.n} {kind} entries ({where}) name a hold of "
                        f"{'no account' if h is None else f'account {h.account_id}'}",
                    )
                )
        if row.grant_id is None:
            if kind != UNCOLLECTED:
                add(Breach(who, "entry_without_grant", f"{row.n} {kind} entries"))
            continue
        g = grant_rows.get(row.grant_id)
        if g is None or g.account_id != who:
            add(
                Breach(
                    who,
                    "entry_on_foreign_grant",
                    f"{row.n} {kind} entries name grant {row.grant_id} of another account",
                )
            )
            continue
        if kind in BALANCE_ENTRY_KINDS:
            balance_sums[g.id] += total
        elif kind in HOLD_ENTRY_KINDS:
            hold_sums[g.id] += total
            if row.hold_id is None:
                add(Breach(who, "hold_entry_without_hold", f"{row.n} {kind} entries ({where})"))
            else:
                reserved[(row.hold_id, g.id)] -= total
        else:
            add(Breach(who, "unknown_entry_kind", f"{kind!r} on grant {g.id}"))
        if kind in ISSUE_KINDS:
            issued[g.id][0] += total
            issued[g.id][1] += row.n
        elif kind == EXPIRY and (g.expires_at is None or row.first_at < g.expires_at):
            add(Breach(who, "early_expiry", f"{where} has an expiry entry before it expires"))
        elif kind == REFUND and g.kind != "purchased":
            add(Breach(who, "refund_of_unbought_credit", f"{where} is {g.kind} credit"))

    allocated: dict[int, int] = defaultdict(int)
    hold_allocated: dict[int, int] = defaultdict(int)
    pair_allocated: dict[tuple[int, int], int] = defaultdict(int)
    for a in conn.execute(sa.select(hold_allocations)):
        h = hold_rows.get(a.hold_id)
        g = grant_rows.get(a.grant_id)
        if h is None or h.state != "pending":
            add(
                Breach(
                    a.account_id,
                    "allocation_on_closed_hold",
                    f"hold {a.hold_id} is {h.state if h else 'missing'} but still reserves "
                    f"{_m(a.amount)} on grant {a.grant_id}",
                )
            )
        owners = {a.account_id, h.account_id if h else None, g.account_id if g else None}
        if len(owners) > 1:
            for owner in sorted(o for o in owners if o is not None):
                add(
                    Breach(
                        owner,
                        "allocation_account_mismatch",
                        f"hold {a.hold_id} reserving on grant {a.grant_id} is filed under "
                        f"account {a.account_id}, the hold is of "
                        f"{h.account_id if h else 'no account'} and the grant of "
                        f"{g.account_id if g else 'no account'}",
                    )
                )
        allocated[a.grant_id] += a.amount
        hold_allocated[a.hold_id] += a.amount
        pair_allocated[(a.hold_id, a.grant_id)] += a.amount
    for hold_id, grant_id in reserved.keys() | pair_allocated.keys():
        entries, allocation = reserved[(hold_id, grant_id)], pair_allocated[(hold_id, grant_id)]
        if entries != allocation:
            owner = grant_rows.get(grant_id) or hold_rows.get(hold_id)
            add(
                Breach(
                    owner.account_id if owner is not None else 0,
                    "ledger_hold_mismatch",
                    f"hold {hold_id}'s entries reserve {_m(entries)} on grant {grant_id} but its "
                    f"allocation there is {_m(allocation)}",
                )
            )
    for h in hold_rows.values():
        if h.state == "pending" and hold_allocated[h.id] != h.amount:
            add(
                Breach(
                    h.account_id,
                    "hold_allocations_mismatch",
                    f"hold {h.id} is for {_m(h.amount)} but its grants reserve "
                    f"{_m(hold_allocated[h.id])}",
                )
            )

    for g in grant_rows.values():
        breaches.extend(
            _check_grant(g, now, anchors.get(g.account_id), balance_sums, hold_sums, allocated)
        )
        total, count = issued.get(g.id, (0, 0))
        if count != 1 or total != g.original:
            add(
                Breach(
                    g.account_id,
                    "issue_mismatch",
                    f"grant {g.id} is for {_m(g.original)} but its {count} issuing entries "
                    f"sum to {_m(total)}",
                )
            )

    breaches.extend(_check_usage(conn, anchors))
    breaches.extend(_check_keys(conn))
    breaches.extend(_check_lines(conn))
    return breaches


def _check_keys(conn: sa.Connection) -> list[Breach]:
    """No idempotency key of an account charged twice: two transactions of usage entries under
    one key less than the key retention apart (`idempotency.RETENTION_MICROS`; a key purged
    after it may be used again for a new charge). The candidates come from one grouped
    query; only theirs are read further."""
    transactions = sa.func.count(sa.distinct(ledger.c.transaction_id))
    candidates = conn.execute(
        sa.select(ledger.c.account_id, ledger.c.idempotency_key)
        .where(ledger.c.kind == USAGE, ledger.c.idempotency_key.is_not(None))
        .group_by(ledger.c.account_id, ledger.c.idempotency_key)
        .having(transactions > 1)
        .order_by(ledger.c.account_id, ledger.c.idempotency_key)
    ).all()
    found = []
    for account_id, key in candidates:
        times = sorted(
            conn.execute(
                sa.select(sa.func.min(ledger.c.created_at))
                .where(
                    ledger.c.account_id == account_id,
                    ledger.c.idempotency_key == key,
                    ledger.c.kind == USAGE,
                )
                .group_by(ledger.c.transaction_id)
            ).scalars()
        )
        close = sum(1 for a, b in itertools.pairwise(times) if b - a < RETENTION_MICROS)
        if close:
            found.append(
                Breach(
                    account_id,
                    "key_charged_twice",
                    f"idempotency key {key!r} charged in {len(times)} transactions, "
                    f"{close + 1} of them within the {RETENTION_MICROS // 86_400_000_000} days "
                    "a key is kept",
                )
            )
    return found


def _check_lines(conn: sa.Connection) -> list[Breach]:
    """Every priced line on a ledger entry names the rate-card version and rate that produced
    it (`inputs.names_its_rate`); one breach per account, naming its first such entry. The
    lines are read as text and each distinct text parsed once (a batch of sends repeats it)."""
    checked: dict[str, bool] = {}
    bad: dict[int, list[int]] = {}  # account -> [first entry id, count]
    rows = conn.execution_options(yield_per=10_000).execute(
        sa.select(ledger.c.id, ledger.c.account_id, sa.cast(ledger.c.lines, sa.Text).label("text"))
        .where(ledger.c.lines.is_not(None))
        .order_by(ledger.c.id)
    )
    for r in rows:
        ok = checked.get(r.text)
        if ok is None:
            if len(checked) >= 100_000:  # a bound on memory: call legs' lines rarely repeat
                checked.clear()
            ok = checked[r.text] = _names_rates(r.text)
        if not ok:
            seen = bad.setdefault(r.account_id, [r.id, 0])
            seen[1] += 1
    return [
        Breach(
            account_id,
            "line_without_rate",
            f"{count} ledger entr{'y' if count == 1 else 'ies'} (the first: {first}) carry "
            "priced lines that do not name their rate-card version and rate",
        )
        for account_id, (first, count) in sorted(bad.items())
    ]


def _names_rates(text: str | None) -> bool:
    """True when ``text`` is JSON null or a list of lines each naming its rate."""
    try:
        lines = json.loads(text) if text is not None else None
    except ValueError:
        return False
    return lines is None or lines_name_their_rates(lines)


def _check_grant(
    g: Any,
    now: int,
    anchor_at: int | None,
    balance_sums: dict[int, int],
    hold_sums: dict[int, int],
    allocated: dict[int, int],
) -> list[Breach]:
    """The breaches of one grant's own balances against its entries and allocations."""
    who = g.account_id
    found = []
    if g.remaining < 0 or g.held < 0:
        found.append(
            Breach(
                who,
                "negative_balance",
                f"grant {g.id}: remaining {_m(g.remaining)}, held {_m(g.held)}",
            )
        )
    if g.held > g.remaining:
        found.append(
            Breach(who, "over_reserved", f"grant {g.id} reserves {_m(g.held)} of {_m(g.remaining)}")
        )
    if g.remaining > g.original:
        found.append(
            Breach(who, "over_original", f"grant {g.id}: {_m(g.remaining)} > {_m(g.original)}")
        )
    if g.drained and g.remaining > 0:
        # the charge path never reads a drained grant: its credit could not be spent
        found.append(
            Breach(
                who, "drained_with_credit", f"grant {g.id} is drained but holds {_m(g.remaining)}"
            )
        )
    if balance_sums[g.id] != g.remaining:
        found.append(
            Breach(
                who,
                "ledger_balance_mismatch",
                f"grant {g.id} holds {_m(g.remaining)} but its entries sum to "
                f"{_m(balance_sums[g.id])}",
            )
        )
    if -hold_sums[g.id] != g.held:
        found.append(
            Breach(
                who,
                "ledger_hold_mismatch",
                f"grant {g.id} reserves {_m(g.held)} but its hold entries sum to "
                f"{_m(-hold_sums[g.id])}",
            )
        )
    if allocated[g.id] != g.held:
        found.append(
            Breach(
                who,
                "hold_allocations_mismatch",
                f"grant {g.id} reserves {_m(g.held)} but holds allocate {_m(allocated[g.id])}",
            )
        )
    if g.kind != "free_monthly":
        return found
    if g.period_start is None or g.expires_at is None:
        found.append(
            Breach(
                who,
                "free_credit_without_period",
                f"free credit grant {g.id} has no period or no expiry, so it would roll over",
            )
        )
    if g.expires_at is not None and g.expires_at <= now and g.remaining != g.held:
        found.append(
            Breach(
                who,
                "free_credit_not_expired",
                f"free credit grant {g.id} expired but still holds {_m(g.remaining - g.held)}",
            )
        )
    if g.period_start is not None and anchor_at is not None:
        start, end = period_bounds_micros(anchor_at, g.period_start)
        if (start, end) != (g.period_start, g.expires_at):
            runs = "never expires" if g.expires_at is None else f"expires {_iso(g.expires_at)}"
            found.append(
                Breach(
                    who,
                    "free_credit_outside_its_period",
                    f"free credit grant {g.id} starts {_iso(g.period_start)} and {runs}, but "
                    f"its period runs {_iso(start)} to {_iso(end)}",
                )
            )
    return found


def _iso(micros: int) -> str:
    return from_micros(micros).isoformat()


def _check_usage(conn: sa.Connection, anchors: dict[int, int]) -> list[Breach]:
    """Period usage counters equal the paid credit used in each period.

    The paid grants' ids are read first and the usage entries streamed and filtered here: no
    list of ids is bound into a statement (65,535 parameters at most on PostgreSQL), and no join
    is left to a planner that may not have statistics yet (a streamed join of 65,536 fresh grants
    ran for minutes on PostgreSQL). Two linear reads whatever the plan.
    """
    paid = set(
        conn.execute(sa.select(grants.c.id).where(grants.c.kind.in_(sorted(PAID_KINDS)))).scalars()
    )
    used: dict[tuple[int, int], int] = defaultdict(int)
    last: dict[int, tuple[int, int]] = {}  # account -> the period of its previous entry
    rows = conn.execution_options(yield_per=10_000).execute(
        sa.select(
            ledger.c.account_id, ledger.c.grant_id, ledger.c.amount, ledger.c.created_at
        ).where(ledger.c.kind == USAGE)
    )
    for r in rows:
        if r.grant_id not in paid:
            continue
        who, at = r.account_id, r.created_at
        bounds = last.get(who)
        if bounds is None or not bounds[0] <= at < bounds[1]:
            if who not in anchors:
                continue  # an entry of no account: reported by the grant checks
            bounds = last[who] = period_bounds_micros(anchors[who], at)
        used[(who, bounds[0])] -= r.amount
    # the counters streamed against what the ledger says, each period's sum dropped once
    # compared: one row per account and period for ever must not all be held at once (two
    # whole-database dicts took 560 MB for 900,000 counters)
    wrong: list[tuple[int, int, int, int]] = []  # account, period, counter, ledger
    counters = conn.execution_options(yield_per=10_000).execute(
        sa.select(
            usage_periods.c.account_id, usage_periods.c.period_start, usage_periods.c.paid_used
        )
    )
    for u in counters:
        spent = used.pop((u.account_id, u.period_start), 0)
        if spent != u.paid_used:
            wrong.append((u.account_id, u.period_start, u.paid_used, spent))
    wrong.extend((who, period, 0, spent) for (who, period), spent in used.items() if spent != 0)
    return [
        Breach(
            account_id,
            "usage_counter_mismatch",
            f"period starting {_iso(period)}: counter {_m(counter)}, ledger {_m(spent)}",
        )
        for account_id, period, counter, spent in sorted(wrong)
    ]
