"""The credit wallet: the only code that moves money.

`Wallet` is the embedded API: one method per operation, each in its own transaction, each write
idempotent by key. The building blocks (`Book` and the functions of `charges`, `grants`, `holds`,
`accounts`) let other packages compose money movements inside one transaction of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from talktime.config import Settings, get_settings
from talktime.errors import TalktimeError
from talktime.store import make_engine, upgrade
from talktime.store.engine import is_sqlite_file, memory_lock, read_snapshot
from talktime.store.migrate import DatabaseNotMigratedError, refuse_unmigrated
from talktime.store.reuse import ConnectionStack, is_disconnect, lost_race
from talktime.store.wallet_tables import GRANT_LIVE
from talktime.store.wallet_tables import grants as grants_table
from talktime.store.writer import writer_turn
from talktime.wallet import accounts, charges, grants, holds, idempotency, ledger, outbox
from talktime.wallet.book import AccountState, Book, LiveGrant, new_transaction_id
from talktime.wallet.charges import ChargeItem
from talktime.wallet.errors import (
    AccountNotFoundError,
    GrantNotFoundError,
    HoldNotFoundError,
    HoldNotPendingError,
    IdempotencyConflictError,
    InsufficientCreditError,
    InvalidAmountError,
    InvalidRequestError,
    MonthlyLimitReachedError,
    PlanNotFoundError,
    RefundNotAllowedError,
    WalletError,
)
from talktime.wallet.idempotency import check_caller_key, reserved_key_refusal
from talktime.wallet.inputs import (
    check_id,
    check_moment,
    check_priority,
    check_string,
    check_ttl,
)
from talktime.wallet.model import (
    Account,
    AccountResult,
    Balance,
    Balances,
    ChargeResult,
    Grant,
    GrantResult,
    Hold,
    HoldResult,
    LedgerEntry,
    LedgerPage,
    RefundResult,
    SettleResult,
    to_json,
)
from talktime.wallet.periods import from_micros, period_bounds, to_micros, utcnow
from talktime.wallet.verify import Breach, verify

if TYPE_CHECKING:
    from talktime.wallet.cycle import CycleRun
    from talktime.wallet.payments import PaymentProvider
    from talktime.wallet.recharge import RechargeOutcome, RechargeSettings

T = TypeVar("T")

_RETRIES = 5


def _catch_up(conn: sa.Connection, account_id: int, now: int) -> None:
    """The wallet's books open an account's begun periods first, with the plans table's free
    credit, as `Wallet.run_cycle` does (see `Book.catch_up`)."""
    from talktime.wallet.cycle import catch_up_hook  # imports this package: at call time

    catch_up_hook()(conn, account_id, now)


class Wallet:
    """The credit wallet on one database. Amounts are int micro-units; times are aware UTC
    datetimes; every method that writes takes an idempotency key and an optional ``now``
    (default: the wallet's clock), so tests can move time explicitly.
    """

    def __init__(
        self,
        engine: sa.Engine,
        clock: Callable[[], datetime] = utcnow,
        *,
        owns_engine: bool = False,
    ) -> None:
        """A wallet on ``engine``. It keeps a few idle connections of the engine between writes
        (`close` gives them back); with ``owns_engine`` (as `open` makes it) `close` also
        disposes the engine. On in-memory SQLite (one connection shared by every thread) the
        transactions and reads of every wallet on the engine run one at a time."""
        self.engine = engine
        self.clock = clock
        self._connections = ConnectionStack(engine)
        self._owns_engine = owns_engine
        self._serial = memory_lock(engine)  # shared by every wallet on the engine
        self._file = is_sqlite_file(engine)

    def _writer_turn(self) -> AbstractContextManager[object]:
        """Around every write on a SQLite file: the writer turn (`store.writer`), shared with
        the service's writers, so a wallet write queues in the kernel instead of SQLite's busy
        handler. In memory `_one_at_a_time` already serialises everything."""
        return writer_turn(self.engine) if self._file else nullcontext()

    def _one_at_a_time(self) -> AbstractContextManager[object]:
        """Held around every use of the engine: on in-memory SQLite a lock, since two threads'
        transactions on its one connection would interleave (a COMMIT of one ending the other's
        writes half-way); elsewhere nothing, as each transaction has a connection of its own."""
        return self._serial if self._serial is not None else nullcontext()

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        migrate: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> Wallet:
        """A wallet on ``url`` (default: the configured database); ``migrate=True`` first
        brings the schema to the newest revision."""
        engine = make_engine(url, settings or get_settings())
        if migrate:
            upgrade(engine)
        return cls(engine, clock, owns_engine=True)

    def close(self) -> None:
        """Give the idle connections back to the engine's pool, and dispose the engine if this
        wallet made it (`open`); an engine passed in stays usable by its other users."""
        with self._one_at_a_time():
            self._connections.close()
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Wallet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- transactions ----------------------------------------------------------------------

    def _micros(self, now: datetime | None) -> int:
        if now is None:
            return self._clock_micros()
        check_moment(now, "now")
        return to_micros(now)

    def _clock_micros(self) -> int:
        return to_micros(self.clock())

    def _clock_of(self, now: datetime | None) -> Callable[[], int] | None:
        """The clock a book may read again (`Book.clock`): none when the caller gave ``now``."""
        return self._clock_micros if now is None else None

    @contextmanager
    def book(self, now: datetime | None = None) -> Iterator[Book]:
        """A `Book` on a new transaction, flushed and committed when the block ends (rolled
        back if it raises). Use it to compose several operations atomically; like a charge,
        it opens the periods of an account begun and not yet opened by the cycle first."""
        with (
            self._one_at_a_time(),
            refuse_unmigrated(),
            self._writer_turn(),
            self._connections.begin() as conn,
        ):
            book = Book(conn, self._micros(now), catch_up=_catch_up, clock=self._clock_of(now))
            yield book
            book.flush(commit=True)

    @refuse_unmigrated()
    def _write(
        self, work: Callable[[Book], T], now: datetime | None, *, opens_periods: bool = False
    ) -> T:
        """Run ``work`` in a transaction of its own (retried after a lost race). A write that
        ``opens_periods`` (a charge, batch, hold, settle, or a monthly limit or low-balance
        threshold changed, which apply from now) opens the account's periods begun
        and not yet opened by the cycle first (`Book.catch_up`); the jobs and grants do not."""
        catch_up = _catch_up if opens_periods else None
        for attempt in range(_RETRIES):
            try:
                refusal: MonthlyLimitReachedError | None = None
                with (
                    self._one_at_a_time(),
                    self._writer_turn(),
                    self._connections.begin() as conn,
                ):
                    book = Book(
                        conn, self._micros(now), catch_up=catch_up, clock=self._clock_of(now)
                    )
                    try:
                        result = work(book)
                    except MonthlyLimitReachedError as exc:
                        refusal = exc  # commit only the monthly_limit.reached event
                    book.flush(commit=True)
                if refusal is not None:
                    raise refusal
                return result
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                # A concurrent writer won a race (same new key, deadlock, serialization) or
                # a reused connection was gone: retry from scratch; every write is keyed, so
                # the replay path answers if the first attempt did commit.
                if attempt == _RETRIES - 1 or not _retryable(exc):
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A connection reading one snapshot (`store.engine.read_snapshot`: under READ
        COMMITTED `verify` reported breaches that were not there)."""
        with self._one_at_a_time(), refuse_unmigrated(), read_snapshot(self.engine) as conn:
            yield conn

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        """A connection in a new transaction of the engine (committed unless the block raises)."""
        with (
            self._one_at_a_time(),
            refuse_unmigrated(),
            self._writer_turn(),
            self.engine.begin() as conn,
        ):
            yield conn

    # ---- plans and accounts ------------------------------------------------------------------

    def upsert_plan(self, name: str, monthly_free_credit: int, now: datetime | None = None) -> None:
        """Create or update a plan's monthly free credit (the service syncs the rate card)."""
        check_string(name, "plan name", limit=64)
        with self._begin() as conn:
            accounts.upsert_plan(conn, name, monthly_free_credit, self._micros(now))

    def plans(self) -> dict[str, int]:
        """Every plan and its monthly free credit."""
        with self._read() as conn:
            return accounts.list_plans(conn)

    def create_account(
        self,
        name: str,
        plan: str,
        key: str,
        *,
        currency: str = "USD",
        anchor: datetime | None = None,
        monthly_limit: int | None = None,
        low_balance_threshold: int | None = None,
        now: datetime | None = None,
    ) -> AccountResult:
        """Create an account and issue the first period's free credit of its plan."""
        check_string(name, "account name", limit=200)
        check_string(plan, "plan", limit=64)
        check_moment(anchor, "anchor")
        check_caller_key(key)
        return self._write(
            lambda b: accounts.create(
                b,
                name,
                plan,
                key,
                currency=currency,
                anchor=anchor,
                monthly_limit=monthly_limit,
                low_balance_threshold=low_balance_threshold,
            ),
            now,
        )

    def account(self, account_id: int) -> Account:
        """The stored account."""
        check_id(account_id, "account id")
        with self._read() as conn:
            return accounts.get_account(conn, account_id)

    def set_plan(
        self, account_id: int, plan: str, key: str, now: datetime | None = None
    ) -> AccountResult:
        """Change the plan; its free credit applies from the next period."""
        check_id(account_id, "account id")
        check_caller_key(key)
        check_string(plan, "plan", limit=64)
        return self._write(
            lambda b: accounts.update(b, account_id, "set_plan", {"plan": plan}, key), now
        )

    def set_status(
        self, account_id: int, status: str, key: str, now: datetime | None = None
    ) -> AccountResult:
        """Set the subscription status: `active`, `past_due` or `canceled`."""
        check_id(account_id, "account id")
        check_caller_key(key)
        return self._write(
            lambda b: accounts.update(b, account_id, "set_status", {"status": status}, key), now
        )

    def set_monthly_limit(
        self, account_id: int, limit: int | None, key: str, now: datetime | None = None
    ) -> AccountResult:
        """Set (or with None remove) the cap on paid credit used per period."""
        check_id(account_id, "account id")
        check_caller_key(key)
        return self._write(
            lambda b: accounts.update(
                b, account_id, "set_monthly_limit", {"monthly_limit": limit}, key
            ),
            now,
            opens_periods=True,
        )

    def set_low_balance_threshold(
        self, account_id: int, threshold: int | None, key: str, now: datetime | None = None
    ) -> AccountResult:
        """Set (or remove) the available credit under which `balance.low` is queued."""
        check_id(account_id, "account id")
        check_caller_key(key)
        return self._write(
            lambda b: accounts.update(
                b,
                account_id,
                "set_low_balance_threshold",
                {"low_balance_threshold": threshold},
                key,
            ),
            now,
            opens_periods=True,
        )

    # ---- money -----------------------------------------------------------------------------

    def grant(
        self,
        account_id: int,
        kind: str,
        amount: int,
        key: str,
        *,
        expires_at: datetime | None = None,
        effective_at: datetime | None = None,
        priority: int | None = None,
        source: str | None = None,
        now: datetime | None = None,
    ) -> GrantResult:
        """Grant credit (`purchased`, `promotional` or `refund`; `free_monthly` is refused:
        only the monthly cycle issues it, from the plan)."""
        check_id(account_id, "account id")
        check_moment(expires_at, "expires_at")
        check_moment(effective_at, "effective_at")
        check_priority(priority)
        check_caller_key(key)
        return self._write(
            lambda b: grants.issue(
                b,
                account_id,
                kind,
                amount,
                key,
                expires_at=expires_at,
                effective_at=effective_at,
                priority=priority,
                source=source,
            ),
            now,
        )

    def charge(
        self,
        account_id: int,
        amount: int,
        key: str,
        *,
        reference: str | None = None,
        lines: Any = None,
        now: datetime | None = None,
    ) -> ChargeResult:
        """Debit the whole amount or refuse (`insufficient_credit`, `monthly_limit_reached`)."""
        check_caller_key(key)
        return self._write(
            lambda b: charges.charge(b, account_id, amount, key, reference, lines),
            now,
            opens_periods=True,
        )

    def charge_batch(
        self, items: list[ChargeItem], now: datetime | None = None
    ) -> list[ChargeResult | TalktimeError]:
        """Many charges in one transaction: a result or a refusal per item, in order."""
        if not isinstance(items, list | tuple) or not all(
            isinstance(item, ChargeItem) for item in items
        ):
            raise InvalidRequestError("a batch is a list of ChargeItem")
        refused: dict[int, TalktimeError] = {}
        for index, item in enumerate(items):
            refusal = reserved_key_refusal(item.key)
            if refusal is not None:
                refused[index] = refusal
        if not refused:
            return self._write(lambda b: charges.charge_many(b, items), now, opens_periods=True)
        rest = [item for index, item in enumerate(items) if index not in refused]
        done = iter(
            self._write(lambda b: charges.charge_many(b, rest), now, opens_periods=True)
            if rest
            else []
        )
        return [refused[index] if index in refused else next(done) for index in range(len(items))]

    def authorize(
        self,
        account_id: int,
        amount: int,
        key: str,
        ttl: timedelta,
        *,
        reference: str | None = None,
        now: datetime | None = None,
    ) -> HoldResult:
        """Reserve the whole amount until now + ttl, or refuse."""
        check_id(account_id, "account id")
        check_caller_key(key)
        check_ttl(ttl)
        ttl_micros = _micros_of(ttl)
        return self._write(
            lambda b: holds.authorize(b, account_id, amount, key, ttl_micros, reference),
            now,
            opens_periods=True,
        )

    def extend(
        self,
        hold_id: int,
        amount: int,
        key: str,
        *,
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> HoldResult:
        """Reserve ``amount`` more on a pending hold; ``ttl`` moves its deadline to now + ttl."""
        check_id(hold_id, "hold id")
        check_caller_key(key)
        if ttl is not None:
            check_ttl(ttl)
        ttl_micros = None if ttl is None else _micros_of(ttl)
        return self._write(
            lambda b: holds.extend(b, hold_id, amount, key, ttl_micros), now, opens_periods=True
        )

    def settle(
        self,
        hold_id: int,
        actual: int,
        key: str,
        *,
        lines: Any = None,
        now: datetime | None = None,
    ) -> SettleResult:
        """Charge the actual amount, release the rest; a shortfall is recorded `uncollected`."""
        check_id(hold_id, "hold id")
        check_caller_key(key)
        return self._write(
            lambda b: holds.settle(b, hold_id, actual, key, lines), now, opens_periods=True
        )

    def void(self, hold_id: int, key: str, now: datetime | None = None) -> HoldResult:
        """Release a pending hold without charging."""
        check_id(hold_id, "hold id")
        check_caller_key(key)
        return self._write(lambda b: holds.void(b, hold_id, key), now)

    def expire_holds(self, now: datetime | None = None) -> int:
        """Release every pending hold past its deadline; returns how many (periodic job)."""
        at = self._micros(now)
        count = 0
        while True:
            with self._read() as conn:
                due = holds.due_holds(conn, at)
            for hold_id in due:
                count += self._write(functools.partial(_expire_hold, hold_id), from_micros(at))
            if len(due) < 1000:
                return count

    def expire_grants(self, now: datetime | None = None) -> int:
        """Write `expiry` entries for the credit left on expired grants; returns the amount.
        Run `run_cycle` first, as the worker's `wallet.expire` job does: a period the cycle
        has yet to close is closed with the credit left when it runs."""
        at = self._micros(now)
        with self._read() as conn:
            due = (
                conn.execute(
                    sa.select(grants_table.c.account_id)
                    .where(
                        GRANT_LIVE,
                        grants_table.c.remaining > grants_table.c.held,
                        grants_table.c.expires_at <= at,
                    )
                    .distinct()
                )
                .scalars()
                .all()
            )
        total = 0
        for account_id in sorted(due):
            total += self._write(functools.partial(_expire_grants, account_id), from_micros(at))
        return total

    def run_cycle(self, now: datetime | None = None) -> list[CycleRun]:
        """The monthly cycle (`talktime.wallet.cycle.run_cycle`) on this wallet's database at
        ``now`` (default: the wallet's clock): each account whose period ended moves on, with
        its plan's free credit from the plans table. Returns the periods opened."""
        from talktime.wallet.cycle import run_cycle  # imports this package: at call time

        with self._one_at_a_time():
            return run_cycle(self.engine, self.clock() if now is None else now)

    # ---- payments --------------------------------------------------------------------------

    def purchase(
        self,
        account_id: int,
        amount: int,
        key: str,
        provider: PaymentProvider,
        now: datetime | None = None,
    ) -> GrantResult:
        """Buy credit through ``provider`` with the account's saved payment method; granted only
        after the payment succeeded (`talktime.wallet.recharge.purchase`)."""
        from talktime.wallet import recharge  # imports this package: at call time

        with self._one_at_a_time():
            return recharge.purchase(
                self.engine,
                account_id,
                amount,
                key,
                provider,
                now=self.clock() if now is None else now,  # the wallet's clock, as every write
            )

    def set_payment_method(
        self,
        account_id: int,
        *,
        customer: str | None,
        payment_method: str | None,
        now: datetime | None = None,
    ) -> RechargeSettings:
        """Save the provider's customer and payment method used for every payment."""
        from talktime.wallet import recharge

        at = self._micros(now)
        with self._begin() as conn:
            return recharge.set_payment_method(
                conn, account_id, customer=customer, payment_method=payment_method, now=at
            )

    def configure_auto_recharge(
        self,
        account_id: int,
        *,
        enabled: bool,
        threshold: int | None = None,
        amount: int | None = None,
        now: datetime | None = None,
    ) -> RechargeSettings:
        """Auto-recharge: when paid credit falls under ``threshold``, buy ``amount`` more.
        Turning it on needs both and queues a recharge at once if paid credit is already
        under the threshold; turning it off keeps the stored threshold (if None) and amount
        (if None or 0) (`talktime.wallet.recharge.configure`)."""
        from talktime.wallet import recharge

        at = self._micros(now)
        with self._begin() as conn:
            return recharge.configure(
                conn, account_id, enabled=enabled, threshold=threshold, amount=amount, now=at
            )

    def process_recharges(
        self, provider: PaymentProvider, now: datetime | None = None
    ) -> list[RechargeOutcome]:
        """Pay the recharges due at ``now`` (default: the wallet's clock) and record each
        outcome (the worker's job; safe from many processes at once)."""
        from talktime.wallet import recharge

        with self._one_at_a_time():
            return recharge.process_recharges(
                self.engine, provider, self.clock() if now is None else now
            )

    def refund(
        self, account_id: int, grant_id: int, amount: int, key: str, now: datetime | None = None
    ) -> RefundResult:
        """Take back unspent purchased credit from a grant."""
        check_id(account_id, "account id")
        check_id(grant_id, "grant id")
        check_caller_key(key)
        return self._write(lambda b: grants.refund(b, account_id, grant_id, amount, key), now)

    # ---- reads -----------------------------------------------------------------------------

    def balance(self, account_id: int, now: datetime | None = None) -> Balance:
        """Free credit left and when it expires, paid, held, available, limit and usage, as
        the account stands (a read: a period that ended shows until `run_cycle` or a charge
        opens the next; `GET /v1/balance` opens it first)."""
        check_id(account_id, "account id")
        with self._read() as conn:
            return accounts.read_balance(conn, account_id, self._micros(now))

    def grants(self, account_id: int) -> list[Grant]:
        """Every grant of the account, in consumption order."""
        check_id(account_id, "account id")
        with self._read() as conn:
            return [
                Grant(
                    id=g.id,
                    account_id=g.account_id,
                    kind=g.kind,
                    original=g.original,
                    remaining=g.remaining,
                    held=g.held,
                    priority=g.priority,
                    effective_at=from_micros(g.effective_at),
                    expires_at=None if g.expires_at is None else from_micros(g.expires_at),
                    period_start=None if g.period_start is None else from_micros(g.period_start),
                    source=g.source,
                )
                for g in accounts.list_grants(conn, account_id)
            ]

    def ledger(
        self,
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
        """A page of the account's ledger, newest first (pass `next_cursor` for the next)."""
        check_id(account_id, "account id")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequestError(f"the limit must be an int, not {type(limit).__name__}")
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidRequestError("the cursor is the `next_cursor` string of a page")
        check_moment(since, "since")
        check_moment(until, "until")
        with self._read() as conn:
            return ledger.list_entries(
                conn,
                account_id,
                cursor=cursor,
                limit=limit,
                kind=kind,
                reference=reference,
                transaction_id=transaction_id,
                since=since,
                until=until,
            )

    def events(
        self, account_id: int | None = None, type: str | None = None
    ) -> list[dict[str, Any]]:
        """Outbox events, oldest first: dicts of ``id``, ``account_id``, ``type``, ``payload``
        and ``created_at`` (an aware UTC datetime, as every time the wallet answers)."""
        if account_id is not None:
            check_id(account_id, "account id")
        check_string(type, "event type", limit=64, optional=True)
        with self._read() as conn:
            return outbox.list_events(conn, account_id, type)

    def verify(self, now: datetime | None = None) -> list[Breach]:
        """Every broken invariant in the database (empty when all is well)."""
        with self._read() as conn:
            return verify(conn, self._micros(now))

    def purge_idempotency(self, now: datetime | None = None) -> int:
        """Delete idempotency records older than 30 days; returns how many."""
        with self._begin() as conn:
            return idempotency.purge(conn, self._micros(now))


def _expire_hold(hold_id: int, book: Book) -> int:
    return int(holds.expire_hold(book, hold_id))


def _expire_grants(account_id: int, book: Book) -> int:
    return grants.expire(book, book.account(account_id))


def _micros_of(ttl: timedelta) -> int:
    check_ttl(ttl)
    return (ttl.days * 86_400 + ttl.seconds) * 1_000_000 + ttl.microseconds


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    return isinstance(exc, sa.exc.IntegrityError) or is_disconnect(exc) or lost_race(exc)


__all__ = [
    "Account",
    "AccountNotFoundError",
    "AccountResult",
    "AccountState",
    "Balance",
    "Balances",
    "Book",
    "Breach",
    "ChargeItem",
    "ChargeResult",
    "DatabaseNotMigratedError",
    "Grant",
    "GrantNotFoundError",
    "GrantResult",
    "Hold",
    "HoldNotFoundError",
    "HoldNotPendingError",
    "HoldResult",
    "IdempotencyConflictError",
    "InsufficientCreditError",
    "InvalidAmountError",
    "InvalidRequestError",
    "LedgerEntry",
    "LedgerPage",
    "LiveGrant",
    "MonthlyLimitReachedError",
    "PlanNotFoundError",
    "RefundNotAllowedError",
    "RefundResult",
    "SettleResult",
    "Wallet",
    "WalletError",
    "new_transaction_id",
    "period_bounds",
    "to_json",
]
