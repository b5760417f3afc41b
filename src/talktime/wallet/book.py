"""The unit of work every money movement goes through, inside one open transaction.

A `Book` locks the accounts it touches (SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN
IMMEDIATE already serialises writers), loads their live grants once, applies operations in
memory (each checked completely before it changes anything) and writes the grant updates, ledger
entries, idempotency records, usage counters and events in a few batched statements at `flush`.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from talktime import money
from talktime.store.rawsql import (
    RawStatement,
    begin_in_pipeline,
    commit_in_pipeline,
    driver_errors,
    pairs_params,
    pairs_source,
    pipeline,
)
from talktime.store.recharge_tables import recharge_settings
from talktime.store.wallet_tables import (
    GRANT_LIVE,
    accounts,
    grants,
    idempotency,
    ledger,
    usage_periods,
)
from talktime.wallet import idempotency as idem
from talktime.wallet import outbox
from talktime.wallet.errors import (
    AccountNotFoundError,
    InvalidAmountError,
    InvalidRequestError,
    MonthlyLimitReachedError,
)
from talktime.wallet.inputs import check_storable
from talktime.wallet.model import PAID_KINDS, Balances
from talktime.wallet.periods import from_micros, period_bounds_micros

_ACCOUNT_COLUMNS = (
    accounts.c.id,
    accounts.c.status,
    accounts.c.plan,
    accounts.c.anchor_at,
    accounts.c.period_start,
    accounts.c.period_end,
    accounts.c.monthly_limit,
    accounts.c.low_balance_threshold,
    accounts.c.currency,
)
_GRANT_COLUMNS = (
    grants.c.id.label("g_id"),
    grants.c.kind.label("g_kind"),
    grants.c.remaining.label("g_remaining"),
    grants.c.held.label("g_held"),
    grants.c.priority.label("g_priority"),
    grants.c.effective_at.label("g_effective_at"),
    grants.c.expires_at.label("g_expires_at"),
)
# PostgreSQL locks the account row first, in its own statement: a joined SELECT ... FOR UPDATE
# that waited for the lock would re-read only the locked row and keep stale grant rows.
_LOCK_ONE = RawStatement(
    sa.select(accounts.c.id).where(accounts.c.id == sa.bindparam("account_id")).with_for_update()
)
_RECHARGE_COLUMNS = (
    recharge_settings.c.enabled.label("r_enabled"),
    recharge_settings.c.threshold.label("r_threshold"),
    recharge_settings.c.amount.label("r_amount"),
)
# The hot path's read: the account with its auto-recharge settings, its live grants and the
# request's key record in one query.
_LOAD_ONE = RawStatement(
    sa.select(
        *_ACCOUNT_COLUMNS,
        *_RECHARGE_COLUMNS,
        *_GRANT_COLUMNS,
        idempotency.c.operation.label("i_operation"),
        idempotency.c.fingerprint.label("i_fingerprint"),
        idempotency.c.response.label("i_response"),
    )
    .select_from(
        accounts.outerjoin(recharge_settings, recharge_settings.c.account_id == accounts.c.id)
        .outerjoin(
            grants,
            sa.and_(grants.c.account_id == accounts.c.id, GRANT_LIVE),
        )
        .outerjoin(
            idempotency,
            sa.and_(
                idempotency.c.account_id == accounts.c.id,
                idempotency.c.key == sa.bindparam("key"),
            ),
        )
    )
    .where(accounts.c.id == sa.bindparam("account_id"))
)
_AccountRow = namedtuple(  # type: ignore[misc]
    "_AccountRow", [c.key for c in (*_ACCOUNT_COLUMNS, *_RECHARGE_COLUMNS)]
)
_GrantRow = namedtuple(  # type: ignore[misc]
    "_GrantRow", ["account_id", *(c.key for c in _GRANT_COLUMNS)]
)


@dataclass(frozen=True)
class _ManySql:
    """A batch's three loads as fixed SQL taking each list as one parameter (SQLite: a JSON
    array read with json_each; PostgreSQL: arrays), so the statements are prepared once whatever
    the batch size. Keys are looked up as (account, key) pairs, one index probe each."""

    lock: str
    live: str
    keys: str


@functools.cache
def _many_sql(dialect: str) -> _ManySql:
    if dialect == "postgresql":
        one, lock = "= ANY(%s)", " FOR UPDATE OF a"
    else:
        one, lock = "IN (SELECT value FROM json_each(?))", ""
    pairs = pairs_source(dialect)
    account_cols = ", ".join(f"a.{c.key}" for c in _ACCOUNT_COLUMNS)
    recharge_cols = "r.enabled, r.threshold, r.amount"
    grant_cols = "id, kind, remaining, held, priority, effective_at, expires_at"
    # the live-grants index's condition as this dialect writes it (no parameters: constants)
    live = GRANT_LIVE.compile(dialect=(postgresql if dialect == "postgresql" else sqlite).dialect())
    return _ManySql(
        lock=f"SELECT {account_cols}, {recharge_cols} FROM accounts AS a "
        f"LEFT JOIN recharge_settings AS r ON r.account_id = a.id "
        f"WHERE a.id {one} ORDER BY a.id{lock}",
        live=f"SELECT account_id, {grant_cols} FROM grants WHERE account_id {one} AND {live}",
        keys="SELECT i.account_id, i.key, i.operation, i.fingerprint, i.response "
        f"FROM {pairs} JOIN idempotency AS i ON i.account_id = j.a AND i.key = j.k",
    )


def _id_list(conn: sa.Connection, values: list[Any]) -> Any:
    """One parameter holding a list, as `_ManySql` statements take it."""
    return list(values) if conn.dialect.name == "postgresql" else json.dumps(values)


_ENTRY_COLUMNS = (
    "transaction_id",
    "account_id",
    "grant_id",
    "hold_id",
    "amount",
    "kind",
    "reference",
    "idempotency_key",
    "lines",
    "created_at",
)
_INSERT_LEDGER = RawStatement(sa.insert(ledger), _ENTRY_COLUMNS)
_INSERT_RECORDS = RawStatement(
    sa.insert(idempotency),
    ("account_id", "key", "operation", "fingerprint", "response", "created_at"),
)
LIVE_GRANTS = sa.select(*_GRANT_COLUMNS).where(
    grants.c.account_id == sa.bindparam("account_id"), GRANT_LIVE
)
"""The live grants of one account, as rows for `live_grant`."""
_GRANT_BY_ID = sa.select(grants.c.account_id, *_GRANT_COLUMNS).where(
    grants.c.id == sa.bindparam("grant_id")
)


def _grant_update(**also: Any) -> RawStatement:
    """A grant's new `remaining` and `held` by id, rows (gid, new_remaining, new_held)."""
    return RawStatement(
        sa.update(grants)
        .where(grants.c.id == sa.bindparam("gid"))
        .values(remaining=sa.bindparam("new_remaining"), held=sa.bindparam("new_held"), **also),
        row_keys=("gid", "new_remaining", "new_held"),
    )


_UPDATE_GRANT = _grant_update()
# A grant emptied by this write leaves `ix_grants_live`; only this rarer UPDATE names
# `drained`, so the common one never touches the index.
_DRAIN_GRANT = _grant_update(drained=sa.true())
_USAGE = RawStatement(
    sa.select(usage_periods.c.paid_used, usage_periods.c.limit_reached).where(
        usage_periods.c.account_id == sa.bindparam("account_id"),
        usage_periods.c.period_start == sa.bindparam("period_start"),
    )
)


CatchUp = Callable[[sa.Connection, int, int], object]
"""``(conn, account_id, now)``: open the account's periods begun by ``now`` (see `Book`)."""


def new_transaction_id() -> str:
    """A fresh ledger transaction id (also the id of a charge): 32 hex digits, the wall-clock
    microseconds then 72 random bits, so ids sort by time and the ledger's transaction index
    grows at its end instead of at random pages."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(9)}"


MAX_WALLET_AMOUNT = 2**62
"""The largest amount (micro-units) the wallet takes; the API refuses a larger one up front."""


def check_amount(amount: int, *, allow_zero: bool = False, what: str = "amount") -> None:
    """Refuse anything but a positive (or zero, when allowed) int of micro-units."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmountError(
            f"the {what} must be an int of micro-units, not {type(amount).__name__}"
        )
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmountError(
            f"the {what} must be {'zero or more' if allow_zero else 'more than zero'}, "
            f"not {amount}",
            amount=amount,
        )
    if amount > MAX_WALLET_AMOUNT:
        raise InvalidAmountError(f"the {what} {amount} is too large", amount=amount)


def check_text(value: str | None, what: str, limit: int | None = 200) -> None:
    """Refuse a text field (a reference, a source) the database could not store alike on both
    backends: not a string, longer than its column, or holding a NUL character (PostgreSQL
    text cannot; SQLite would keep it) or a lone surrogate. None passes."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidRequestError(f"the {what} must be a string, not {type(value).__name__}")
    if limit is not None and len(value) > limit:
        raise InvalidRequestError(f"the {what} has {len(value)} characters; at most {limit}")
    check_storable(value, what)


@dataclass
class LiveGrant:
    """A grant's working copy inside a book; `saved_*` are the values in the database."""

    id: int
    kind: str
    remaining: int
    held: int
    priority: int
    effective_at: int
    expires_at: int | None
    saved_remaining: int = 0
    saved_held: int = 0

    @property
    def available(self) -> int:
        """Credit that may still be used or reserved."""
        return self.remaining - self.held

    @property
    def paid(self) -> bool:
        """Purchased or refunded credit (counts towards the monthly limit)."""
        return self.kind in PAID_KINDS

    def usable(self, now: int) -> bool:
        """Effective and not expired at ``now``."""
        return self.effective_at <= now and (self.expires_at is None or self.expires_at > now)

    def order_key(self) -> tuple[int, bool, int, int, int]:
        """Consumption order: (priority, expires_at with none last, effective_at, id)."""
        return (
            self.priority,
            self.expires_at is None,
            self.expires_at or 0,
            self.effective_at,
            self.id,
        )


@dataclass
class AccountState:
    """A locked account and its grants with credit left, as loaded into a book."""

    id: int
    status: str
    plan: str
    anchor_at: int
    period_start: int
    period_end: int
    monthly_limit: int | None
    low_balance_threshold: int | None
    currency: str = "USD"
    """What its amounts are in: refusals name it beside each amount."""
    recharge: tuple[int, int] | None = None
    """Auto-recharge (threshold, amount) when enabled, as read with the account."""
    recharge_loaded: bool = False
    """True when `recharge` was read with the account (else it is read when needed)."""
    debited: bool = False
    """True once this book took or reserved credit of the account (`Book.debited`): `flush`
    then checks whether paid credit is under the auto-recharge threshold."""
    grants: dict[int, LiveGrant] = field(default_factory=dict)
    usage: dict[int, int] = field(default_factory=dict)
    """Paid usage per period start, as loaded plus what this book added."""
    usage_delta: dict[int, int] = field(default_factory=dict)
    limit_flagged: dict[int, bool] = field(default_factory=dict)

    def shown(self, amount: int) -> str:
        """An amount of this account as a refusal's sentence shows it: `3.0000 EUR`."""
        return f"{money.format(amount)} {self.currency}"

    def live(self, now: int) -> list[LiveGrant]:
        """Usable grants with credit left, in consumption order."""
        return sorted(
            (g for g in self.grants.values() if g.remaining > 0 and g.usable(now)),
            key=LiveGrant.order_key,
        )

    def available(self, now: int) -> int:
        """Usable credit not reserved by holds."""
        return sum(g.available for g in self.grants.values() if g.usable(now))

    def balances(self, now: int) -> Balances:
        """Free, paid, held and available credit at ``now``.

        A grant that expired while reserved by a hold still counts its reserved part (not the
        rest), so available = free + paid - held always.
        """
        free = paid = held = 0
        for g in self.grants.values():
            amount = g.remaining if g.usable(now) else g.held
            held += g.held
            if g.paid:
                paid += amount
            else:
                free += amount
        return Balances(free=free, paid=paid, held=held, available=free + paid - held)

    def paid_held(self) -> int:
        """Paid credit the account's pending holds reserve (it counts towards the monthly
        limit as if used: the holds settle into paid usage later)."""
        return sum(g.held for g in self.grants.values() if g.paid)

    def period_at(self, now: int) -> int:
        """Start of the billing period holding ``now`` (for the usage counter)."""
        if self.period_start <= now < self.period_end:
            return self.period_start
        return period_bounds_micros(self.anchor_at, now)[0]

    def period_end_at(self, now: int) -> int:
        """End of the billing period holding ``now`` (from the anchor when the cycle has not
        moved the account into that period yet)."""
        if self.period_start <= now < self.period_end:
            return self.period_end
        return period_bounds_micros(self.anchor_at, now)[1]


class Book:
    """One unit of work on an open connection inside a transaction (see module docstring).

    Use `Book(conn, now)`, call operations (`wallet.charges.charge(book, ...)`, ...), then
    `flush()` before the transaction commits. `now` is epoch microseconds.
    """

    def __init__(
        self,
        conn: sa.Connection,
        now: int,
        *,
        catch_up: CatchUp | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.conn = conn
        self.now = now
        self.clock = clock
        """Where ``now`` came from, when it was read from a clock (not given by the caller): the
        first accounts this book loads may then move it forward (`_read_clock_again`)."""
        self.catch_up = catch_up
        """Opens the periods of an account that began by ``now`` and the monthly cycle has not
        opened yet (`cycle.catch_up` with the caller's plan credit), run before the account
        is used: the new period's free credit pays from its first microsecond, not from
        whenever the cycle runs. None for the cycle's own books (and reads)."""
        self.states: dict[int, AccountState] = {}
        self.entries: list[tuple[Any, ...]] = []
        """Queued ledger rows, in `_ENTRY_COLUMNS` order."""
        self.events: list[dict[str, Any]] = []
        self.records: list[tuple[Any, ...]] = []
        """Queued idempotency rows: account, key, operation, fingerprint, response, time."""
        self.keys: dict[tuple[int, str], tuple[str, str, str] | None] = {}
        self._now_datetime: datetime | None = None

    @property
    def now_datetime(self) -> datetime:
        """`now` as a UTC datetime (built once per book)."""
        if self._now_datetime is None:
            self._now_datetime = from_micros(self.now)
        return self._now_datetime

    # ---- accounts and grants -------------------------------------------------------------

    def account(self, account_id: int, key: str | None = None) -> AccountState:
        """The locked state of an account (loaded and locked on first use, in one query that
        also fetches the record of idempotency ``key`` when given)."""
        state = self.states.get(account_id)
        if state is not None:
            return state
        if isinstance(account_id, bool) or not isinstance(account_id, int):
            raise AccountNotFoundError(f"account id must be an int, not {account_id!r}")
        # an invalid key is refused by the request's own replay; the database never sees it
        lookup = key if key and idem.is_valid_key(key) else None
        params = {"account_id": account_id, "key": lookup or ""}
        first = not self.states
        rows = self._load_one(params)
        if rows and first and rows[0].period_start > self.now:
            self._read_clock_again()
        if rows and self.catch_up is not None and rows[0].period_end <= self.now:
            # the period ended and the cycle has not opened the next one: open it first
            self.catch_up(self.conn, account_id, self.now)
            rows = self._load_one(params)
        if not rows:
            raise AccountNotFoundError(f"there is no account {account_id}", account_id=account_id)
        state = account_state(rows[0])
        for row in rows:
            if row.g_id is not None:
                state.grants[row.g_id] = live_grant(row)
        if lookup:
            first = rows[0]
            self.keys[(account_id, lookup)] = (
                None
                if first.i_operation is None
                else (first.i_operation, first.i_fingerprint, first.i_response)
            )
        self.states[account_id] = state
        return state

    def _read_clock_again(self) -> None:
        """An account just loaded is in a period that begins after ``now``: on PostgreSQL this
        book read its clock, then waited for the account's lock while another transaction
        opened that period (expiring the last period's free credit). At ``now`` neither
        period's free credit would be usable, so read the clock again: the book acts when it
        holds the lock, in the period now open. Only before the book has loaded anything else
        (so every row it writes carries one time) and only when ``now`` came from a clock."""
        if self.clock is not None:
            self.now = max(self.now, self.clock())
            self._now_datetime = None

    def _load_one(self, params: dict[str, Any]) -> list[Any]:
        if self.conn.dialect.name == "postgresql":
            # Lock, then read in a later statement (a fresh snapshot), in one round trip.
            return list(_LOAD_ONE.rows_after(self.conn, _LOCK_ONE, params))
        return list(_LOAD_ONE.rows(self.conn, params))

    def load(self, requests: Sequence[tuple[int, str]]) -> None:
        """Lock and load the accounts of many ``(account_id, key)`` requests at once, in id
        order (so concurrent batches never deadlock), with the records of those keys; missing
        accounts are skipped (each request reports its own)."""
        wanted = sorted({a for a, _ in requests if _is_id(a) and a not in self.states})
        if not wanted:
            return
        first = not self.states
        sql = _many_sql(self.conn.dialect.name)
        ids = _id_list(self.conn, wanted)
        cursor = self.conn.connection.cursor()
        try:
            with driver_errors(self.conn, sql.lock):
                loaded = self._load_rows(cursor, sql, ids, requests)
        finally:
            cursor.close()
        if first and any(s.period_start > self.now for s in self.states.values()):
            self._read_clock_again()
        if self.catch_up is not None:
            states = self.states
            ended = [a for a in wanted if a in states and states[a].period_end <= self.now]
            for account_id in ended:  # as in `account`: open the periods begun first
                del self.states[account_id]
                self.catch_up(self.conn, account_id, self.now)
                self.account(account_id)
        if loaded is None:
            return
        pairs, found = loaded
        for pair in pairs:
            self.keys.setdefault(pair, found.get(pair))

    def _load_rows(
        self, cursor: Any, sql: _ManySql, ids: Any, requests: Sequence[tuple[int, str]]
    ) -> tuple[set[tuple[int, str]], dict[tuple[int, str], tuple[str, str, str]]] | None:
        """`load`'s three queries: accounts (locked), live grants, then the keys' records. On
        PostgreSQL the three go out together (one wait): the server runs them in order, so
        the two reads still start after the lock was granted and see what its holder
        committed."""
        # as in `account`: an invalid key is refused by its request's replay, not looked up
        # (nor an id no account can have: this query goes out before the accounts are known)
        valid = sorted({(a, k) for a, k in requests if _storable_id(a) and idem.is_valid_key(k)})
        if self.conn.dialect.name == "postgresql":
            live_cursor = self.conn.connection.cursor()
            keys_cursor = self.conn.connection.cursor()
            try:
                with pipeline(self.conn), begin_in_pipeline(self.conn):
                    cursor.execute(sql.lock, (ids,))
                    live_cursor.execute(sql.live, (ids,))
                    keys_cursor.execute(sql.keys, pairs_params("postgresql", valid))
                accounts, grants = cursor.fetchall(), live_cursor.fetchall()
                keys = keys_cursor.fetchall()
            finally:
                live_cursor.close()
                keys_cursor.close()
        else:
            cursor.execute(sql.lock, (ids,))
            accounts = cursor.fetchall()
            cursor.execute(sql.live, (ids,))
            grants = cursor.fetchall()
            keys = []
            if valid:
                cursor.execute(sql.keys, pairs_params("sqlite", valid))
                keys = cursor.fetchall()
        for row in accounts:
            self.states[row[0]] = account_state(_AccountRow(*row))
        for row in grants:
            self.states[row[0]].grants[row[1]] = live_grant(_GrantRow(*row))
        pairs = {pair for pair in valid if pair[0] in self.states}
        if not pairs:
            return None
        found = {(r[0], r[1]): (r[2], r[3], r[4]) for r in keys if (r[0], r[1]) in pairs}
        return pairs, found

    def grant(self, state: AccountState, grant_id: int) -> LiveGrant | None:
        """A grant of the account by id, loaded if it has no credit left (None if not there)."""
        found = state.grants.get(grant_id)
        if found is not None:
            return found
        row = self.conn.execute(_GRANT_BY_ID, {"grant_id": grant_id}).first()
        if row is None or row.account_id != state.id:
            return None
        state.grants[row.g_id] = live_grant(row)
        return state.grants[row.g_id]

    def add_grant(self, state: AccountState, grant: LiveGrant) -> None:
        """Track a grant just inserted (its row already holds these values)."""
        grant.saved_remaining, grant.saved_held = grant.remaining, grant.held
        state.grants[grant.id] = grant

    # ---- idempotency ---------------------------------------------------------------------

    def prefetch_keys(self, account_id: int, keys: list[str]) -> None:
        """Load the stored records of many keys of one account in one query."""
        wanted = [k for k in keys if (account_id, k) not in self.keys]
        found = idem.lookup(self.conn, account_id, wanted)
        for k in wanted:
            self.keys[(account_id, k)] = found.get(k)

    def replay(self, account_id: int, key: str, operation: str, fingerprint: str) -> str | None:
        """The stored response of this request's key, None if new; raises on a conflict."""
        idem.check_key(key)
        if (account_id, key) not in self.keys:
            self.prefetch_keys(account_id, [key])
        return idem.replay(self.keys[(account_id, key)], key, operation, fingerprint)

    def remember(
        self, account_id: int, key: str, operation: str, fingerprint: str, response: str
    ) -> None:
        """Store a successful response under its key (written at flush)."""
        self.keys[(account_id, key)] = (operation, fingerprint, response)
        self.records.append((account_id, key, operation, fingerprint, response, self.now))

    # ---- ledger, usage and events --------------------------------------------------------

    def entry(
        self,
        transaction_id: str,
        account_id: int,
        grant_id: int | None,
        amount: int,
        kind: str,
        *,
        hold_id: int | None = None,
        reference: str | None = None,
        key: str | None = None,
        lines_json: str | None = None,
    ) -> None:
        """Queue one ledger entry (written at flush); ``lines_json`` is the priced lines as
        `inputs.encode_lines` gives them."""
        self.entries.append(
            (
                transaction_id,
                account_id,
                grant_id,
                hold_id,
                amount,
                kind,
                reference,
                key,
                lines_json,
                self.now,
            )
        )

    def event(self, account_id: int, type_: str, payload: dict[str, Any]) -> None:
        """Queue an outbox event (written at flush, in this transaction)."""
        self.events.append(outbox.event_row(account_id, type_, payload, self.now))

    def period_usage(self, state: AccountState) -> int:
        """Paid-credit usage of the current period (loaded once)."""
        period = state.period_at(self.now)
        if period not in state.usage:
            found = _USAGE.rows(self.conn, {"account_id": state.id, "period_start": period})
            row = found[0] if found else None
            # what this book added and has not written yet counts too
            pending = state.usage_delta.get(period, 0)
            state.usage[period] = (row.paid_used if row else 0) + pending
            state.limit_flagged[period] = bool(row.limit_reached) if row else False
        return state.usage[period]

    def check_limit(self, state: AccountState, paid: int) -> None:
        """Refuse when ``paid`` more paid credit would pass the monthly limit, counting the
        paid credit pending holds reserve as used (`AccountState.paid_held`): a charge or a
        new reservation must leave room for the calls in progress to settle."""
        if state.monthly_limit is None or paid == 0:
            return
        used = self.period_usage(state)
        reserved = state.paid_held()
        if used + reserved + paid > state.monthly_limit:
            self.flag_limit(state)
            left = state.shown(max(state.monthly_limit - used - reserved, 0))
            held = (
                f" after the {state.shown(reserved)} held for usage in progress" if reserved else ""
            )
            facts = {"reserved": reserved} if reserved else {}
            raise MonthlyLimitReachedError(
                f"this would use {state.shown(paid)} of paid credit, but only {left} of the "
                f"monthly limit of {state.shown(state.monthly_limit)} is left this period"
                f"{held}; raise the limit or wait for the next period",
                limit=state.monthly_limit,
                used=used,
                needed=paid,
                **facts,
            )

    def flag_limit(self, state: AccountState) -> None:
        """Queue `monthly_limit.reached` once per account and period."""
        period = state.period_at(self.now)
        self.period_usage(state)
        if state.limit_flagged.get(period):
            return
        state.limit_flagged[period] = True
        state.usage_delta.setdefault(period, 0)
        self.event(
            state.id,
            outbox.MONTHLY_LIMIT_REACHED,
            {
                "limit": state.monthly_limit,
                "used": state.usage[period],
                "period_start": from_micros(period).isoformat(),
            },
        )

    def add_usage(self, state: AccountState, paid: int) -> None:
        """Count paid credit used this period (never refused here: checks come first)."""
        if paid == 0:
            return
        period = state.period_at(self.now)
        if state.monthly_limit is not None:
            self.period_usage(state)
        if period in state.usage:  # else not read yet (no limit): a later read adds the delta
            state.usage[period] += paid
        state.usage_delta[period] = state.usage_delta.get(period, 0) + paid
        if state.monthly_limit is not None and state.usage[period] >= state.monthly_limit:
            self.flag_limit(state)

    @staticmethod
    def debited(state: AccountState) -> None:
        """Note that a debit (a charge, a settle, a reservation) succeeded on the account:
        `flush` checks auto-recharge for it, whichever credit the debit took."""
        state.debited = True

    def debit_events(self, state: AccountState, before: int, after: int | None = None) -> None:
        """`credit.depleted` / `balance.low` when available credit crossed zero / the threshold
        (``after`` is computed from the grants unless the caller knows it)."""
        if after is None:
            after = state.available(self.now)
        if before > 0 and after == 0:
            self.event(state.id, outbox.CREDIT_DEPLETED, {"available": 0})
        threshold = state.low_balance_threshold
        if threshold is not None and before >= threshold > after:
            self.event(state.id, outbox.BALANCE_LOW, {"available": after, "threshold": threshold})

    # ---- consumption ---------------------------------------------------------------------

    @staticmethod
    def plan(grants_in_order: list[LiveGrant], amount: int) -> list[tuple[LiveGrant, int]]:
        """How much to take from each grant, in order, for ``amount`` (caller checked it fits)."""
        takes: list[tuple[LiveGrant, int]] = []
        rest = amount
        for g in grants_in_order:
            if rest == 0:
                break
            take = min(g.available, rest)
            if take > 0:
                takes.append((g, take))
                rest -= take
        assert rest == 0, "plan called for more than the grants hold"
        return takes

    # ---- writing -------------------------------------------------------------------------

    def flush(self, *, commit: bool = False) -> None:
        """Write every queued change; call once before the transaction commits.

        ``commit=True`` says the caller commits right after and writes nothing more: on
        PostgreSQL the COMMIT then goes out in the same round trip as the writes (the
        SQLAlchemy commit that follows finds no transaction and sends nothing).
        """
        from talktime.wallet import recharge  # imports book: resolved at call time

        # A debit succeeded: maybe queue a recharge (settings were read with the account, so
        # an account without auto-recharge costs no query here).
        debited = [s for s in self.states.values() if s.debited]
        if debited:
            recharge.queue_many(self, debited)
            for state in debited:
                state.debited = False
        conn = self.conn
        events, self.events = self.events, []
        postgresql = conn.dialect.name == "postgresql"
        with pipeline(conn):  # PostgreSQL: the writes go out in one round trip
            self._write_changes(conn)
            if commit and postgresql and not events:
                commit_in_pipeline(conn)
        if events:
            outbox.write_events(conn, events)

    def _write_changes(self, conn: sa.Connection) -> None:
        dirty = [
            (g.id, g.remaining, g.held)
            for s in self.states.values()
            for g in s.grants.values()
            if g.remaining != g.saved_remaining or g.held != g.saved_held
        ]
        usage = [
            (s.id, period, delta, s.limit_flagged.get(period, False))
            for s in self.states.values()
            for period, delta in s.usage_delta.items()
        ]
        updated, drained = dirty, [row for row in dirty if row[1] == 0]
        if drained:
            updated = [row for row in dirty if row[1] != 0]
        cursor = conn.connection.cursor()  # one cursor for every write of the flush
        try:
            if updated:
                _UPDATE_GRANT.executemany_rows(conn, updated, cursor)
            if drained:
                _DRAIN_GRANT.executemany_rows(conn, drained, cursor)
            if self.entries:
                _INSERT_LEDGER.executemany_rows(conn, self.entries, cursor)
            if self.records:
                _INSERT_RECORDS.executemany_rows(conn, self.records, cursor)
            if usage:
                _upsert_usage(conn.dialect.name).executemany_rows(conn, usage, cursor)
        finally:
            cursor.close()
        # Only now (every write went through) is the book's view the saved one.
        if dirty:
            for s in self.states.values():
                for g in s.grants.values():
                    g.saved_remaining, g.saved_held = g.remaining, g.held
        self.entries = []
        self.records = []
        if usage:
            for s in self.states.values():
                s.usage_delta = {}


def insert_id(conn: sa.Connection, statement: sa.Insert) -> int:
    """Execute an INSERT of one row and return its new autoincrement id."""
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return int(key[0])


def live_grant(row: Any) -> LiveGrant:
    """A working copy of a grant from a row of the `g_*` grant columns."""
    return LiveGrant(
        id=row.g_id,
        kind=row.g_kind,
        remaining=row.g_remaining,
        held=row.g_held,
        priority=row.g_priority,
        effective_at=row.g_effective_at,
        expires_at=row.g_expires_at,
        saved_remaining=row.g_remaining,
        saved_held=row.g_held,
    )


def account_state(row: Any) -> AccountState:
    """The in-memory state of an `accounts` row (its grants still to be loaded); the row's
    `r_*` auto-recharge columns, when it has them, are kept too."""
    state = AccountState(
        id=row.id,
        status=row.status,
        plan=row.plan,
        anchor_at=row.anchor_at,
        period_start=row.period_start,
        period_end=row.period_end,
        monthly_limit=row.monthly_limit,
        low_balance_threshold=row.low_balance_threshold,
        currency=row.currency,
    )
    if hasattr(row, "r_enabled"):
        state.recharge_loaded = True
        if row.r_enabled:
            state.recharge = (row.r_threshold, row.r_amount)
    return state


def _storable_id(value: object) -> bool:
    """An id a 64-bit key column can hold."""
    return _is_id(value) and -(2**63) <= value < 2**63  # type: ignore[operator]


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@functools.cache
def _upsert_usage(dialect: str) -> RawStatement:
    """Add to a period's usage counter (built once per dialect; run with executemany)."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(usage_periods)
    return RawStatement(
        insert.on_conflict_do_update(
            index_elements=[usage_periods.c.account_id, usage_periods.c.period_start],
            set_={
                "paid_used": usage_periods.c.paid_used + insert.excluded.paid_used,
                # once sent, the period's event stays sent: a book that never read the flag
                # (no limit in force) writes False, which must not clear it
                "limit_reached": sa.or_(
                    usage_periods.c.limit_reached, insert.excluded.limit_reached
                ),
            },
        ),
        ("account_id", "period_start", "paid_used", "limit_reached"),
    )
