"""Daily spend by channel (sms, call, number) over an account's current billing period, computed
from the wallet ledger for the Usage page's chart.

Spend is credit taken by `usage` entries (free and paid alike), dated by the entry's UTC day; a
charge's channel comes from the kinds of its priced lines (`sms`, `call_leg`, `number_rental`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final

import sqlalchemy as sa

from talktime import money
from talktime.store.wallet_tables import ledger
from talktime.wallet import Wallet
from talktime.wallet.model import USAGE
from talktime.wallet.periods import from_micros, to_micros

CHANNELS: Final = ("sms", "call", "number", "other")
"""Chart series, in drawing order; `other` is usage whose lines name no known kind."""

_CHANNEL_OF_LINE: Final[Mapping[str, str]] = {
    "sms": "sms",
    "call_leg": "call",
    "number_rental": "number",
}


def _line_amount(line: Mapping[str, Any]) -> int:
    value = line.get("amount")
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # lines written by the wallet itself carry micro-units
    if isinstance(value, str):
        try:
            return money.parse(value)
        except ValueError:
            return 0
    return 0


def split_by_channel(total: int, lines: Any) -> dict[str, int]:
    """Share ``total`` micro-units out over channels in proportion to the priced lines'
    amounts; the parts add up to ``total`` exactly (the remainder goes to the largest part)."""
    weights: dict[str, int] = {}
    if isinstance(lines, list):
        for line in lines:
            if isinstance(line, Mapping):
                channel = _CHANNEL_OF_LINE.get(str(line.get("kind")), "other")
                weights[channel] = weights.get(channel, 0) + max(0, _line_amount(line))
    if not weights:
        return {"other": total}
    if len(weights) == 1:
        return {next(iter(weights)): total}
    whole = sum(weights.values())
    if whole == 0:
        return {min(weights, key=CHANNELS.index): total}
    shares = {c: total * w // whole for c, w in weights.items()}
    largest = max(shares, key=lambda c: shares[c])
    shares[largest] += total - sum(shares.values())
    return shares


def _days(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    first, last = start.date(), (end - dt.timedelta(microseconds=1)).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def daily(
    rows: Iterable[tuple[str, int, int, Any]], start: dt.datetime, end: dt.datetime
) -> dict[dt.date, dict[str, int]]:
    """Micro-units spent per UTC day and channel from ledger rows (transaction id, amount,
    created_at micros, lines), every day of [start, end) present even when nothing was spent."""
    out = {day: dict.fromkeys(CHANNELS, 0) for day in _days(start, end)}
    transactions: dict[str, list[Any]] = {}
    for transaction_id, amount, created_at, lines in rows:
        entry = transactions.setdefault(transaction_id, [0, created_at, lines])
        entry[0] -= amount  # usage entries are negative: credit taken away
    for total, created_at, lines in transactions.values():
        day = from_micros(created_at).date()
        if day not in out:
            continue
        for channel, part in split_by_channel(total, lines).items():
            out[day][channel] += part
    return out


def period_spend(engine: sa.Engine, account_id: int) -> dict[str, Any]:
    """The current period's daily spend by channel as API data (money as decimal strings)."""
    wallet = Wallet(engine)
    currency = wallet.account(account_id).currency
    balance = wallet.balance(account_id)
    start, end = balance.period_start, balance.period_end
    query = (
        sa.select(ledger.c.transaction_id, ledger.c.amount, ledger.c.created_at, ledger.c.lines)
        .where(
            ledger.c.account_id == account_id,
            ledger.c.kind == USAGE,
            ledger.c.created_at >= to_micros(start),
            ledger.c.created_at < to_micros(end),
        )
        .order_by(ledger.c.id)
    )
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        rows = [(r[0], r[1], r[2], r[3]) for r in conn.execute(query)]
    by_day = daily(rows, start, end)
    totals = dict.fromkeys(CHANNELS, 0)
    for spent in by_day.values():
        for channel, amount in spent.items():
            totals[channel] += amount
    return {
        "currency": currency,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "channels": list(CHANNELS),
        "days": [
            {"day": day.isoformat(), **{c: money.format(v) for c, v in spent.items()}}
            for day, spent in by_day.items()
        ],
        "totals": {c: money.format(v) for c, v in totals.items()},
    }
