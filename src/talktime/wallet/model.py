"""Wallet plain data: constants (grant kinds, priorities, ledger entry kinds) and the frozen
results every operation returns, with a deterministic JSON form used for idempotent replays.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

GRANT_KINDS: Final = ("free_monthly", "purchased", "promotional", "refund")
DEFAULT_PRIORITY: Final = {"free_monthly": 0, "promotional": 10, "refund": 20, "purchased": 30}
"""Lower is consumed first: free monthly credit always first, purchased credit last."""
PAID_KINDS: Final = frozenset({"purchased", "refund"})
"""Credit the customer paid for; its use counts towards the monthly limit. The rest is free."""
STATUSES: Final = ("active", "past_due", "canceled")
HOLD_STATES: Final = ("pending", "settled", "voided", "expired")

# Ledger entry kinds. Balance kinds change a grant's `remaining`; hold kinds change its `held`;
# `uncollected` records a settle shortfall against no grant.
GRANT: Final = "grant"
RECHARGE: Final = "recharge"
USAGE: Final = "usage"
EXPIRY: Final = "expiry"
REFUND: Final = "refund"
HOLD: Final = "hold"
HOLD_RELEASE: Final = "hold_release"
UNCOLLECTED: Final = "uncollected"
BALANCE_ENTRY_KINDS: Final = frozenset({GRANT, RECHARGE, USAGE, EXPIRY, REFUND})
HOLD_ENTRY_KINDS: Final = frozenset({HOLD, HOLD_RELEASE})
ENTRY_KINDS: Final = (GRANT, RECHARGE, USAGE, EXPIRY, REFUND, HOLD, HOLD_RELEASE, UNCOLLECTED)
"""Every kind a ledger entry can have."""

T = TypeVar("T")


@dataclass(frozen=True)
class Balances:
    """Balances of one account after an operation (micro-units). available = free + paid - held."""

    free: int
    paid: int
    held: int
    available: int


@dataclass(frozen=True)
class Account:
    """An account as stored."""

    id: int
    name: str
    currency: str
    plan: str
    status: str
    anchor_at: datetime
    period_start: datetime
    period_end: datetime
    monthly_limit: int | None
    low_balance_threshold: int | None
    created_at: datetime


@dataclass(frozen=True)
class Grant:
    """A lot of credit."""

    id: int
    account_id: int
    kind: str
    original: int
    remaining: int
    held: int
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    period_start: datetime | None
    source: str | None


@dataclass(frozen=True)
class Hold:
    """A reservation across grants until `expires_at`."""

    id: int
    account_id: int
    amount: int
    state: str
    expires_at: datetime
    reference: str | None
    created_at: datetime


@dataclass(frozen=True)
class ChargeResult:
    """A successful charge: where the amount came from and the balances after it."""

    transaction_id: str
    account_id: int
    amount: int
    from_free: int
    from_paid: int
    balance: Balances
    reference: str | None
    created_at: datetime
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class GrantResult:
    """A grant issued, with the account's balances after it."""

    transaction_id: str
    grant: Grant
    balance: Balances
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class HoldResult:
    """A hold after authorize, extend or void, with the balances after it."""

    transaction_id: str
    hold: Hold
    balance: Balances
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class SettleResult:
    """A settled hold: charged = from_free + from_paid; uncollected = actual - charged."""

    transaction_id: str
    hold: Hold
    actual: int
    charged: int
    from_free: int
    from_paid: int
    uncollected: int
    balance: Balances
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class RefundResult:
    """Unspent purchased credit taken back from a grant (to be paid back by the provider)."""

    transaction_id: str
    account_id: int
    grant_id: int
    amount: int
    balance: Balances
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class AccountResult:
    """An account after a write (create, plan, status, limit), with its balances."""

    account: Account
    balance: Balances
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Balance:
    """What `Wallet.balance` reports: free credit left and when it expires, paid, held,
    available, and the monthly limit with this period's paid usage."""

    account_id: int
    free: int
    free_expires_at: datetime | None
    paid: int
    held: int
    available: int
    monthly_limit: int | None
    period_usage: int
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger line; entries of one operation share `transaction_id`."""

    id: int
    transaction_id: str
    account_id: int
    grant_id: int | None
    hold_id: int | None
    amount: int
    kind: str
    reference: str | None
    idempotency_key: str | None
    lines: Any
    created_at: datetime


@dataclass(frozen=True)
class LedgerPage:
    """A page of ledger entries, newest first; pass `next_cursor` to get the next page."""

    entries: tuple[LedgerEntry, ...]
    next_cursor: str | None


_PLAIN = (int, str, bool, float, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def to_dict(obj: Any) -> Any:
    """Plain JSON-able data for a result (times as ISO 8601 strings; `replayed` left out)."""
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name != "replayed")
        _FIELD_NAMES[cls] = names
    if names is not None:
        return {name: to_dict(getattr(obj, name)) for name in names}
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, tuple | list):
        return [to_dict(x) for x in obj]
    return obj


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_string = json.encoder.encode_basestring  # the quoted JSON string, as _CANONICAL writes it


def to_json(obj: Any) -> str:
    """The canonical JSON of a result: the exact text stored and replayed for its key."""
    return _CANONICAL.encode(to_dict(obj))


_last_iso: tuple[datetime | None, str] = (None, "")


def _iso(at: datetime) -> str:
    """The quoted ISO 8601 text of ``at``; a batch's results share one time, so the last one
    is remembered."""
    global _last_iso
    last = _last_iso  # one read: other threads may replace it
    if last[0] is not at:
        last = _last_iso = (at, _string(at.isoformat()))
    return last[1]


def charge_json(result: ChargeResult) -> str:
    """`to_json` of a `ChargeResult`, the same text, written directly (it runs once per
    charge on the hot path; its fields are ints and strings in sorted key order)."""
    b = result.balance
    reference = "null" if result.reference is None else _string(result.reference)
    return (
        f'{{"account_id":{int(result.account_id)},"amount":{int(result.amount)},'
        f'"balance":{{"available":{int(b.available)},"free":{int(b.free)},'
        f'"held":{int(b.held)},"paid":{int(b.paid)}}},'
        f'"created_at":{_iso(result.created_at)},'
        f'"from_free":{int(result.from_free)},"from_paid":{int(result.from_paid)},'
        f'"reference":{reference},"transaction_id":{_string(result.transaction_id)}}}'
    )


def from_json(cls: type[T], text: str, *, replayed: bool = False) -> T:
    """Rebuild a result stored with `to_json` (marked `replayed`)."""
    obj: T = _decode(cls, json.loads(text))
    if replayed and any(f.name == "replayed" for f in dataclasses.fields(cls)):  # type: ignore[arg-type]
        obj = dataclasses.replace(obj, replayed=True)  # type: ignore[type-var]
    return obj


_HINTS: dict[type, dict[str, Any]] = {}


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(args[0], value) if len(args) == 1 else value
    if hint is datetime:
        return datetime.fromisoformat(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _HINTS.get(hint)
        if hints is None:
            hints = _HINTS[hint] = typing.get_type_hints(hint)
        return hint(**{k: _decode(hints[k], v) for k, v in value.items()})
    return value
