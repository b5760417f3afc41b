"""Helpers every use case shares: the clock, ids, money refusals at the edge, result JSON."""

from __future__ import annotations

import functools
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from talktime import money
from talktime.errors import TalktimeError
from talktime.service.idempotency import KeepWritesError
from talktime.wallet import charges
from talktime.wallet.book import Book
from talktime.wallet.errors import MonthlyLimitReachedError
from talktime.wallet.model import ChargeResult

MONEY_FACTS = (
    "needed",
    "available",
    "limit",
    "used",
    "reserved",
    "amount",
    "monthly_limit",
    "period_usage",
    "refundable",
)
"""Refusal facts that are amounts of money: shown to clients as decimal strings."""


def now_micros() -> int:
    """The current time in epoch microseconds (UTC)."""
    return time.time_ns() // 1000


def new_id(prefix: str) -> str:
    """A new public id such as `msg_0f3a...`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def fmt(amount: int) -> str:
    """Micro-units as the API's decimal string (at least 4 decimals)."""
    return money.format(amount, 4)


def with_money_facts(exc: TalktimeError, currency: str) -> TalktimeError:
    """The refusal with its money facts as decimal strings and the currency named."""
    changed = False
    for name in MONEY_FACTS:
        value = exc.extra.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            exc.extra[name] = fmt(value)
            changed = True
    if changed:
        exc.extra.setdefault("currency", currency)
    return exc


def to_json(data: Any) -> str:
    """The canonical JSON text of a response (stored for replays, sent as is)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def balance_dict(balance: Any, currency: str) -> dict[str, Any]:
    """A wallet `Balances` as API data."""
    return {
        "currency": currency,
        "free": fmt(balance.free),
        "paid": fmt(balance.paid),
        "held": fmt(balance.held),
        "available": fmt(balance.available),
    }


@functools.lru_cache(maxsize=256)
def iso(micros: int) -> str:
    """Epoch microseconds as an ISO 8601 UTC time (the sends of a batch share one time, so
    the last few are kept)."""
    return datetime.fromtimestamp(micros / 1_000_000, UTC).isoformat(timespec="milliseconds")


def charge_or_refuse(
    book: Book,
    account_id: int,
    amount: int,
    key: str,
    reference: str,
    lines: Any,
    currency: str,
) -> ChargeResult:
    """The wallet charge, its refusal told in decimal strings; a monthly-limit refusal keeps
    the wallet's `monthly_limit.reached` event (the only thing it writes)."""
    try:
        return charges.charge(book, account_id, amount, key, reference, lines)
    except MonthlyLimitReachedError as refusal:
        book.flush()
        raise KeepWritesError(with_money_facts(refusal, currency)) from None
    except TalktimeError as refusal:
        raise with_money_facts(refusal, currency) from None
