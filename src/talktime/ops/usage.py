"""Usage reports: counts and totals of messages, calls and number rentals over a time range,
grouped by any of day, channel, direction, country, number type, user and phone number.

Messages and calls come from their tables (a call counts once completed), rentals from the
ledger's `number:` usage entries. Country and number type are those of the other party (the
destination of an outgoing message or call, the caller of an incoming one; the rented number
for a rental); `phone_number` is the account's own number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from talktime import money
from talktime.errors import TalktimeError
from talktime.numbers import InvalidNumberError, classify
from talktime.ops.clock import HOUR, from_datetime, iso
from talktime.ops.statements import StatementAccountNotFoundError, has_prefix
from talktime.store.api_tables import calls, messages
from talktime.store.engine import read_snapshot
from talktime.store.recharge_tables import phone_numbers
from talktime.store.wallet_tables import accounts, ledger
from talktime.wallet.accounts import currency_of
from talktime.wallet.inputs import EARLIEST, LATEST

DIMENSIONS = ("day", "channel", "direction", "country", "number_type", "user", "phone_number")
MAX_RANGE_US = 366 * 24 * HOUR
MAX_ROWS = 1_000_000
EARLIEST_US = from_datetime(EARLIEST)
LATEST_US = from_datetime(LATEST)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""`since` and `until` lie in [EARLIEST_US, LATEST_US] (UTC), the times the wallet accepts."""


class InvalidUsageQueryError(TalktimeError):
    code = "invalid_usage_query"
    status = 422
    title = "Invalid usage query"


@dataclass(frozen=True)
class Item:
    """One billable event, before grouping."""

    at: int
    channel: str
    direction: str
    remote: str | None
    user: str | None
    phone_number: str | None
    quantity: int
    amount: int


@dataclass(frozen=True)
class Group:
    """One row of the report: the dimension values asked for, a count, units and the total."""

    key: tuple[str | None, ...]
    count: int
    quantity: int
    amount: int


def _remote(e164: str | None) -> tuple[str | None, str | None]:
    if not e164:
        return None, None
    try:
        info = classify(e164)
    except InvalidNumberError:
        return None, None
    return info.country, info.type


def _items(conn: sa.Connection, account_id: int, since: int, until: int) -> Iterator[Item]:
    m = messages.c
    for r in conn.execute(
        sa.select(m.created_at, m.direction, m.from_number, m.to_number, m.user_id)
        .add_columns(m.segments, m.amount)
        .where(m.account_id == account_id, m.created_at >= since, m.created_at < until)
    ):
        outbound = r.direction != "inbound"
        yield Item(
            r.created_at,
            "sms",
            r.direction,
            r.to_number if outbound else r.from_number,
            r.user_id,
            r.from_number if outbound else r.to_number,
            int(r.segments),
            int(r.amount),
        )
    c = calls.c
    for r in conn.execute(
        sa.select(
            c.completed_at, c.direction, c.from_number, c.to_number, c.user_id, c.amount
        ).where(
            c.account_id == account_id,
            c.completed_at.is_not(None),
            c.completed_at >= since,
            c.completed_at < until,
        )
    ):
        outbound = r.direction != "inbound"
        yield Item(
            r.completed_at,
            "call",
            r.direction,
            r.to_number if outbound else r.from_number,
            r.user_id,
            r.from_number if outbound else r.to_number,
            1,
            int(r.amount or 0),
        )
    numbers = {
        str(n.id): n.e164
        for n in conn.execute(
            sa.select(phone_numbers.c.id, phone_numbers.c.e164).where(
                phone_numbers.c.account_id == account_id
            )
        )
    }
    for r in conn.execute(
        sa.select(ledger.c.created_at, ledger.c.reference, sa.func.sum(ledger.c.amount))
        .where(
            ledger.c.account_id == account_id,
            ledger.c.kind == "usage",
            has_prefix(ledger.c.reference, "number:"),
            ledger.c.created_at >= since,
            ledger.c.created_at < until,
        )
        .group_by(ledger.c.transaction_id, ledger.c.created_at, ledger.c.reference)
    ):
        ref = str(r.reference).removeprefix("number:")
        e164 = numbers.get(ref, ref if ref.startswith("+") else None)
        yield Item(r.created_at, "number", "rental", e164, None, e164, 1, -int(r[2]))


def _value(item: Item, dimension: str) -> str | None:
    if dimension == "day":
        return (iso(item.at) or "")[:10]
    if dimension == "channel":
        return item.channel
    if dimension == "direction":
        return item.direction
    if dimension == "country":
        return _remote(item.remote)[0]
    if dimension == "number_type":
        return _remote(item.remote)[1]
    if dimension == "user":
        return item.user
    return item.phone_number


def default_range(now: int, since: int | None, until: int | None) -> tuple[int, int]:
    """The report's [since, until) with the defaults filled in: `until` now (exclusive, so
    `now` itself is in), `since` the start (UTC) of the month the range ends in, which is
    this month without an `until` (an `until` alone used to keep this month's start, and an
    earlier `until` was refused for a `since` the caller never gave)."""
    end = now + 1 if until is None else until
    if since is not None:
        return since, end
    if not EARLIEST_US < end <= LATEST_US:
        return EARLIEST_US, end  # `usage` refuses the `until` (out of range), naming it
    last = EPOCH + timedelta(microseconds=end - 1)  # whole microseconds: no float rounding
    return from_datetime(datetime(last.year, last.month, 1, tzinfo=UTC)), end


def usage(
    engine: sa.Engine, account_id: int, since: int, until: int, group_by: Sequence[str] = ()
) -> list[Group]:
    """The account's usage in [since, until), grouped by `group_by` (in that order); an
    unknown account is refused as `account_not_found`."""
    bad = [d for d in group_by if d not in DIMENSIONS]
    if bad:
        raise InvalidUsageQueryError(
            f"cannot group by {bad[0]!r}; use any of {', '.join(DIMENSIONS)}", field="group_by"
        )
    if len(set(group_by)) != len(group_by):
        raise InvalidUsageQueryError("name each group_by dimension once", field="group_by")
    for name, moment in (("since", since), ("until", until)):
        if not EARLIEST_US <= moment <= LATEST_US:
            raise InvalidUsageQueryError(
                f"`{name}` is out of range: times from 1970-01-01 to 9000-01-01 (UTC) are accepted",
                field=name,
            )
    if until <= since:
        raise InvalidUsageQueryError("`until` must be after `since`", field="until")
    if until - since > MAX_RANGE_US:
        raise InvalidUsageQueryError(
            "a usage report covers at most 366 days; narrow the range", field="since"
        )
    totals: dict[tuple[str | None, ...], list[int]] = {}
    # one snapshot for the four reads (PostgreSQL's READ COMMITTED mixed moments)
    with read_snapshot(engine) as conn:
        if (
            conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id)).first()
            is None
        ):
            raise StatementAccountNotFoundError(f"no account {account_id}")
        for n, item in enumerate(_items(conn, account_id, since, until)):
            if n >= MAX_ROWS:
                raise InvalidUsageQueryError(
                    f"more than {MAX_ROWS} items in the range; narrow it", field="since"
                )
            key = tuple(_value(item, d) for d in group_by)
            acc = totals.setdefault(key, [0, 0, 0])
            acc[0] += 1
            acc[1] += item.quantity
            acc[2] += item.amount
    return [
        Group(key, count, quantity, amount)
        for key, (count, quantity, amount) in sorted(
            totals.items(), key=lambda kv: tuple(v or "" for v in kv[0])
        )
    ]


def account_currency(engine: sa.Engine, account_id: int) -> str:
    """The currency of the account's amounts (`account_not_found` for an unknown account)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        found = currency_of(conn, account_id)
    if found is None:
        raise StatementAccountNotFoundError(f"no account {account_id}")
    return found


def to_dicts(groups: Sequence[Group], group_by: Sequence[str]) -> list[dict[str, Any]]:
    """JSON rows: the dimension values, count, quantity (segments, calls, rentals), amount."""
    return [
        {
            **dict(zip(group_by, g.key, strict=True)),
            "count": g.count,
            "quantity": g.quantity,
            "amount": money.format(g.amount, 4),
        }
        for g in groups
    ]


def report(
    engine: sa.Engine,
    account_id: int,
    since: int,
    until: int,
    groups: Sequence[Group],
    group_by: Sequence[str],
) -> dict[str, Any]:
    """The JSON report of `GET /v1/usage` and `talktime usage --json` alike: the account's
    currency, the range and the grouping beside the rows."""
    return {
        "currency": account_currency(engine, account_id),
        "since": iso(since),
        "until": iso(until),
        "group_by": list(group_by),
        "rows": to_dicts(groups, group_by),
    }


def to_csv(groups: Sequence[Group], group_by: Sequence[str]) -> str:
    """CSV with a header row: the dimensions, then count, quantity and amount."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*group_by, "count", "quantity", "amount"])
    for g in groups:
        writer.writerow([*(v or "" for v in g.key), g.count, g.quantity, money.format(g.amount, 4)])
    return out.getvalue()
