"""Monthly statements: opening balance (free and paid), credit granted and bought, usage by
channel, expiries, refunds and the closing balance of one calendar month (UTC), read from the
ledger so the lines add up to it exactly.

Only balance entries (grant, recharge, usage, expiry, refund) move a balance; holds reserve
credit without moving it and a settle shortfall (`uncollected`) is shown apart, as in the ledger.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from talktime import money
from talktime.errors import TalktimeError
from talktime.ops.clock import from_datetime, iso
from talktime.store.wallet_tables import accounts, grants, ledger
from talktime.wallet.model import (
    BALANCE_ENTRY_KINDS,
    EXPIRY,
    GRANT,
    PAID_KINDS,
    RECHARGE,
    REFUND,
    UNCOLLECTED,
    USAGE,
)

# ASCII digits only (`\d` also matches other scripts' digits such as `２０２６`), and `\Z`
# rather than `$`, which would let a final newline through.
_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})\Z")
SECTIONS = ("credit", "usage", "expiry", "refund")
CHANNEL_LABELS = {
    "sms": "SMS",
    "call": "Calls",
    "number": "Phone numbers",
    "other": "Other usage",
}
GRANT_LABELS = {
    "free_monthly": "Free monthly credit",
    "promotional": "Promotional credit",
    "purchased": "Purchased credit",
    "refund": "Refund credit",
}


class InvalidPeriodError(TalktimeError):
    code = "invalid_period"
    status = 422
    title = "Invalid period"


class StatementAccountNotFoundError(TalktimeError):
    code = "account_not_found"
    status = 404
    title = "Account not found"


class StatementMismatchError(TalktimeError):
    code = "statement_mismatch"
    status = 500
    title = "Statement does not match the ledger"


def period_bounds(period: str) -> tuple[int, int]:
    """`YYYY-MM` as [start, end) epoch microseconds (UTC calendar month)."""
    match = _PERIOD.match(period)
    refusal = InvalidPeriodError(
        f"period {period!r} is not a month from 1970-01 to 9999-11 written like 2026-10",
        field="period",
    )
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise refusal
    year, month = int(match.group(1)), int(match.group(2))
    try:  # 9999-12 would end in the year 10000, past what datetime holds
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    except ValueError:
        raise refusal from None
    return from_datetime(start), from_datetime(end)


def channel_of(reference: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """SQL: the usage channel of a ledger reference (`msg_…`, `call_…`, `number:…`), the
    prefix matched case-sensitively on every backend (SQLite's LIKE ignores case)."""
    return sa.case(
        (has_prefix(reference, "msg_"), "sms"),
        (has_prefix(reference, "call_"), "call"),
        (has_prefix(reference, "number:"), "number"),
        else_="other",
    )


def has_prefix(column: sa.ColumnElement[Any], prefix: str) -> sa.ColumnElement[bool]:
    """SQL: whether `column` starts with `prefix`, case-sensitively on SQLite and PostgreSQL
    alike (unlike LIKE, which ignores case on SQLite)."""
    return sa.func.substr(column, 1, len(prefix)) == prefix


@dataclass(frozen=True)
class Line:
    """One statement line: signed amounts taken from (or added to) free and paid credit."""

    section: str
    label: str
    free: int
    paid: int
    entries: int

    @property
    def total(self) -> int:
        return self.free + self.paid


@dataclass(frozen=True)
class Statement:
    """One account's month, in micro-units."""

    account_id: int
    account_name: str
    currency: str
    period: str
    start: int
    end: int
    opening_free: int
    opening_paid: int
    lines: tuple[Line, ...]
    closing_free: int
    closing_paid: int
    uncollected: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form: money as exact decimal strings."""

        def fmt(x: int) -> str:
            return money.format(x, 4)

        return {
            "account_id": self.account_id,
            "account_name": self.account_name,
            "currency": self.currency,
            "period": self.period,
            "start": iso(self.start),
            "end": iso(self.end),
            "opening": {
                "free": fmt(self.opening_free),
                "paid": fmt(self.opening_paid),
                "total": fmt(self.opening_free + self.opening_paid),
            },
            "lines": [
                {
                    "section": line.section,
                    "label": line.label,
                    "free": fmt(line.free),
                    "paid": fmt(line.paid),
                    "total": fmt(line.total),
                    "entries": line.entries,
                }
                for line in self.lines
            ],
            "closing": {
                "free": fmt(self.closing_free),
                "paid": fmt(self.closing_paid),
                "total": fmt(self.closing_free + self.closing_paid),
            },
            "uncollected": fmt(self.uncollected),
        }

    def to_csv(self) -> str:
        """CSV: one row per line between the opening and closing rows."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["section", "label", "free", "paid", "total", "entries"])

        def row(section: str, label: str, free: int, paid: int, n: int | str = "") -> None:
            f = money.format
            writer.writerow([section, label, f(free, 4), f(paid, 4), f(free + paid, 4), n])

        row("opening", "Opening balance", self.opening_free, self.opening_paid)
        for line in self.lines:
            row(line.section, line.label, line.free, line.paid, line.entries)
        row("closing", "Closing balance", self.closing_free, self.closing_paid)
        if self.uncollected:
            row("uncollected", "Uncollected (not covered by credit)", 0, self.uncollected)
        return out.getvalue()


def _label(kind: str, grant_kind: str, channel: str) -> tuple[str, str]:
    if kind == GRANT:
        return "credit", GRANT_LABELS.get(grant_kind, f"{grant_kind} credit")
    if kind == RECHARGE:
        return "credit", "Auto-recharge"
    if kind == USAGE:
        return "usage", CHANNEL_LABELS[channel]
    if kind == EXPIRY:
        return "expiry", "Expired free credit" if grant_kind not in PAID_KINDS else "Expired credit"
    if kind == REFUND:
        return "refund", "Refunded to the payment method"
    raise StatementMismatchError(f"ledger entry kind {kind!r} has no statement line")


def statement(engine: sa.Engine, account_id: int, period: str) -> Statement:
    """The statement of `account_id` for `period` (`YYYY-MM`), checked against the ledger."""
    start, end = period_bounds(period)
    balance_kinds = sorted(BALANCE_ENTRY_KINDS)
    # One snapshot for every query: SQLite's read transaction, PostgreSQL's REPEATABLE READ.
    options: dict[str, Any] = {"sqlite_begin": "DEFERRED"}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    with engine.connect().execution_options(**options) as conn, conn.begin():
        account = conn.execute(
            sa.select(accounts.c.name, accounts.c.currency).where(accounts.c.id == account_id)
        ).first()
        if account is None:
            raise StatementAccountNotFoundError(f"no account {account_id}")
        kinds: dict[int, str] = {
            int(r.id): str(r.kind)
            for r in conn.execute(
                sa.select(grants.c.id, grants.c.kind).where(grants.c.account_id == account_id)
            )
        }

        def split(rows: Any) -> tuple[int, int]:
            free = paid = 0
            for grant_id, total in rows:
                if kinds.get(grant_id) in PAID_KINDS:
                    paid += int(total)
                else:
                    free += int(total)
            return free, paid

        mine = sa.and_(ledger.c.account_id == account_id, ledger.c.kind.in_(balance_kinds))
        opening = split(
            conn.execute(
                sa.select(ledger.c.grant_id, sa.func.sum(ledger.c.amount))
                .where(mine, ledger.c.created_at < start)
                .group_by(ledger.c.grant_id)
            )
        )
        closing = split(
            conn.execute(
                sa.select(ledger.c.grant_id, sa.func.sum(ledger.c.amount))
                .where(mine, ledger.c.created_at < end)
                .group_by(ledger.c.grant_id)
            )
        )
        channel = channel_of(ledger.c.reference).label("channel")
        groups = conn.execute(
            sa.select(
                ledger.c.grant_id,
                ledger.c.kind,
                channel,
                sa.func.sum(ledger.c.amount),
                sa.func.count(),
            )
            .where(mine, ledger.c.created_at >= start, ledger.c.created_at < end)
            .group_by(ledger.c.grant_id, ledger.c.kind, channel)
        ).all()
        uncollected = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(ledger.c.amount), 0)).where(
                ledger.c.account_id == account_id,
                ledger.c.kind == UNCOLLECTED,
                ledger.c.created_at >= start,
                ledger.c.created_at < end,
            )
        ).scalar_one()
    totals: dict[tuple[str, str], list[int]] = {}
    for grant_id, kind, chan, amount, count in groups:
        grant_kind = kinds.get(grant_id, "")
        key = _label(kind, grant_kind, chan)
        acc = totals.setdefault(key, [0, 0, 0])
        acc[1 if grant_kind in PAID_KINDS else 0] += int(amount)
        acc[2] += int(count)
    order = {s: i for i, s in enumerate(SECTIONS)}
    lines = tuple(
        Line(section, label, free, paid, n)
        for (section, label), (free, paid, n) in sorted(
            totals.items(), key=lambda item: (order[item[0][0]], item[0][1])
        )
    )
    result = Statement(
        account_id=account_id,
        account_name=account.name,
        currency=account.currency,
        period=period,
        start=start,
        end=end,
        opening_free=opening[0],
        opening_paid=opening[1],
        lines=lines,
        closing_free=closing[0],
        closing_paid=closing[1],
        uncollected=abs(int(uncollected)),
    )
    moved_free = sum(line.free for line in lines)
    moved_paid = sum(line.paid for line in lines)
    if (opening[0] + moved_free, opening[1] + moved_paid) != closing:
        raise StatementMismatchError(
            f"statement {period} of account {account_id} does not add up to the ledger"
        )
    return result
