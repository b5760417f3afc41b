"""Purchases and auto-recharge: credit is granted only after the payment provider took the money.

`queue_if_needed` runs inside a debit's transaction (and `configure`, when it turns auto-recharge
on) and queues at most one recharge per account;
`process_recharges` (called by the operations worker) claims due recharges, charges the saved
payment method under a key derived from (account, recharge sequence) and records the outcome.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from talktime import money
from talktime.config import Settings, get_settings
from talktime.errors import TalktimeError
from talktime.store.migrate import refuse_unmigrated
from talktime.store.rawsql import RawStatement
from talktime.store.recharge_tables import recharge_settings, recharges
from talktime.store.reuse import lost_race
from talktime.store.tables import constant
from talktime.store.wallet_tables import accounts
from talktime.store.writer import writing
from talktime.wallet import grants, idempotency, outbox
from talktime.wallet.accounts import currency_of
from talktime.wallet.book import AccountState, Book, check_amount, check_text
from talktime.wallet.errors import (
    AccountNotFoundError,
    IdempotencyConflictError,
    InvalidRequestError,
)
from talktime.wallet.inputs import check_id, check_moment
from talktime.wallet.model import RECHARGE, GrantResult, from_json, to_json
from talktime.wallet.payments import (
    PaymentProvider,
    PaymentRequest,
    PaymentResult,
    PaymentSetupError,
    minor_units,
)
from talktime.wallet.periods import from_micros, to_micros, utcnow

log = logging.getLogger(__name__)
_T = TypeVar("_T")

RECHARGE_SUCCEEDED: Final = outbox.RECHARGE_SUCCEEDED
RECHARGE_FAILED: Final = outbox.RECHARGE_FAILED
PURCHASE: Final = "purchase"
PURCHASE_DECLINES: Final = "purchase_declines"
"""The operation of the record counting a purchase key's declined payments."""
LEASE_MICROS: Final = 5 * 60 * 1_000_000
"""A claimed recharge unfinished this long is claimed again (same key: never charged twice)."""
MAX_BACKOFF_MICROS: Final = 24 * 3600 * 1_000_000


class PaymentDeclinedError(TalktimeError):
    """The payment provider declined the payment; no credit was granted."""

    code = "payment_declined"
    status = 402
    title = "Payment declined"


class PaymentUnavailableError(TalktimeError):
    """The payment provider could not be reached or failed; retry with the same key."""

    code = "payment_unavailable"
    status = 503
    title = "Payment provider unavailable"


@dataclass(frozen=True)
class RechargeSettings:
    """An account's auto-recharge settings and its saved payment method."""

    account_id: int
    enabled: bool
    threshold: int
    amount: int
    customer: str | None
    payment_method: str | None
    consecutive_declines: int
    disabled_reason: str | None

    @property
    def amount_set(self) -> bool:
        """False while the amount is the placeholder of a row saved only for the payment
        method (`UNSET_AMOUNT`): auto-recharge was never given an amount."""
        return self.enabled or self.amount != UNSET_AMOUNT


@dataclass(frozen=True)
class Recharge:
    """One recharge: its sequence, the key sent to the provider and where it stands."""

    id: int
    account_id: int
    sequence: int
    amount: int
    state: str
    idempotency_key: str
    attempts: int
    next_attempt_at: datetime
    provider_reference: str | None
    last_error: str | None
    grant_id: int | None


def recharge_key(account_id: int, sequence: int) -> str:
    """The idempotency key of a recharge: the same for every retry of it, never for another."""
    return f"recharge:{account_id}:{sequence}"


def purchase_payment_key(account_id: int, key: str) -> str:
    """The provider (and grant) idempotency key of a purchase made under the caller's ``key``:
    derived, so a retry pays under the same key; hashed, so it stays short."""
    return f"purchase:{account_id}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def attempt_payment_key(account_id: int, base: str, declines: int) -> str:
    """The provider key of a purchase's attempt after ``declines`` declines under its key:
    ``base`` for the first attempt, a key of its own after each decline. A decline took no
    money, so the next attempt may be a new payment (a provider remembers its answer to a
    key: the same key would be declined again whatever the customer changed); after an error
    the count stays, and the retry reuses the key, so the card is never charged twice."""
    if declines == 0:
        return base
    return f"purchase:{account_id}:{_digest(f'{base}:declined:{declines}')}"


def _declines_key(key: str) -> str:
    return f"purchase-declines:{_digest(key)}"


PURCHASE_INTENT: Final = "purchase_intent"
"""The operation of the record a purchase leaves before it pays: the request under its key."""


def _intent_key(key: str) -> str:
    return f"purchase-intent:{_digest(key)}"


def _tie_key(conn: sa.Connection, account_id: int, key: str, fp: str, now: int) -> None:
    """Before paying, tie the purchase's ``key`` to its request (the account is locked): a
    different request under a key whose payment may be under way is an
    `idempotency_conflict`. Two purchases of different amounts racing under one key got the
    provider's one payment, and the grant went to whichever recorded first: $10 paid, $1
    granted. A decline (no money taken) frees the key again (`_free_key`)."""
    intent = idempotency.lookup(conn, account_id, [_intent_key(key)]).get(_intent_key(key))
    if intent is None:
        idempotency.mark(conn, account_id, _intent_key(key), PURCHASE_INTENT, fp, now)
    elif intent[1] != fp:
        raise IdempotencyConflictError(
            f"idempotency key {key!r} is in use by a purchase of another amount; use a new key "
            "for a new request",
            key=key,
        )


def _free_key(conn: sa.Connection, account_id: int, key: str) -> None:
    """Forget the request a declined purchase tied to ``key``: nothing was taken, so another
    request may use the key (a refused request is never kept under its key)."""
    idempotency.forget(conn, account_id, _intent_key(key))


def _declines(conn: sa.Connection, account_id: int, key: str) -> int:
    """How many payments of the purchase under ``key`` the provider declined."""
    record = idempotency.lookup(conn, account_id, [_declines_key(key)]).get(_declines_key(key))
    return 0 if record is None else int(record[2])


def _count_decline(conn: sa.Connection, account_id: int, key: str, seen: int, now: int) -> None:
    """Record one more decline of the purchase under ``key`` (``seen`` were known before)."""
    idempotency.mark(
        conn, account_id, _declines_key(key), PURCHASE_DECLINES, "", now, response=str(seen + 1)
    )


def backoff(declines: int, base_seconds: int) -> int:
    """Microseconds to wait after the ``declines``-th consecutive failure: base * 2^(n-1)."""
    return int(min(base_seconds * 1_000_000 * 2 ** max(declines - 1, 0), MAX_BACKOFF_MICROS))


# ---- settings ----------------------------------------------------------------------------------


_SETTINGS = RawStatement(
    sa.select(recharge_settings).where(recharge_settings.c.account_id == sa.bindparam("account_id"))
)
"""Read when settings were not loaded with the account: run on the raw cursor, like the wallet
hot path."""
_SETTINGS_MANY = sa.select(recharge_settings).where(
    recharge_settings.c.account_id.in_(sa.bindparam("account_ids", expanding=True))
)
_IN_FLIGHT = sa.select(recharges).where(
    recharges.c.account_id == sa.bindparam("account_id"),
    recharges.c.state.in_((constant("pending"), constant("processing"))),
)


def _length(column: sa.Column[Any]) -> int:
    kind = column.type
    assert isinstance(kind, sa.String)
    assert kind.length is not None
    return kind.length


LAST_ERROR_LENGTH = _length(recharges.c.last_error)
DISABLED_REASON_LENGTH = _length(recharge_settings.c.disabled_reason)


def _settings_row(conn: sa.Connection, account_id: int) -> Any:
    found = _SETTINGS.rows(conn, {"account_id": account_id})
    return found[0] if found else None


def _settings(row: Any) -> RechargeSettings:
    return RechargeSettings(
        account_id=row.account_id,
        enabled=bool(row.enabled),
        threshold=row.threshold,
        amount=row.amount,
        customer=row.customer,
        payment_method=row.payment_method,
        consecutive_declines=row.consecutive_declines,
        disabled_reason=row.disabled_reason,
    )


def get_settings_of(conn: sa.Connection, account_id: int) -> RechargeSettings | None:
    """The account's auto-recharge settings, or None if it never set any."""
    row = _settings_row(conn, account_id)
    return None if row is None else _settings(row)


def _check_setting_call(account_id: object, now: object) -> None:
    """Refuse an account id or a time (epoch microseconds) of the wrong type or out of range
    before any query, as the `Wallet` methods do (a 2^64 id was a raw driver error, different
    on each backend)."""
    check_id(account_id, "account id")
    if isinstance(now, bool) or not isinstance(now, int):
        raise InvalidRequestError(f"now is an int of epoch microseconds, not {type(now).__name__}")


def _lock_account(conn: sa.Connection, account_id: int) -> None:
    """Lock the account row (refused when there is none): the settings written under it are
    the ones the next debit reads, and two first writes at once cannot both insert."""
    account = sa.select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()
    if conn.execute(account).first() is None:
        raise AccountNotFoundError(f"there is no account {account_id}", account_id=account_id)


UNSET_AMOUNT = 1
"""The amount a settings row holds until auto-recharge is configured (the column requires
more than zero): a row saved only for the payment method has it. Read as "not set"."""


def _write_settings(
    conn: sa.Connection, account_id: int, values: dict[str, Any], *, stored: bool
) -> None:
    """Update the account's settings row, or insert it when none is ``stored``."""
    if not stored:
        base = {
            "enabled": False,
            "threshold": 0,
            "amount": UNSET_AMOUNT,
            "consecutive_declines": 0,
        }
        conn.execute(
            sa.insert(recharge_settings).values({**base, **values, "account_id": account_id})
        )
    else:
        conn.execute(
            sa.update(recharge_settings)
            .where(recharge_settings.c.account_id == account_id)
            .values(values)
        )


def _upsert(conn: sa.Connection, account_id: int, values: dict[str, Any]) -> None:
    """Write the account's settings row (inserted the first time), under the account's lock:
    on PostgreSQL two first writes at once both found no row and the second insert failed."""
    _lock_account(conn, account_id)
    _write_settings(conn, account_id, values, stored=_settings_row(conn, account_id) is not None)


def _check_settings(enabled: object, threshold: int | None, amount: int | None) -> None:
    """Refuse settings no write may store: turning auto-recharge on needs a threshold (zero
    or more) and an amount (more than zero); turning it off takes an amount of zero too."""
    if not isinstance(enabled, bool):
        raise InvalidRequestError(f"enabled is True or False, not {enabled!r}")
    if enabled:
        for name, value in (("threshold", threshold), ("amount", amount)):
            if value is None:
                raise InvalidRequestError(
                    f"turning auto-recharge on needs a {name}; pass it", field=name
                )
    if threshold is not None:
        check_amount(threshold, allow_zero=True, what="recharge threshold")
    if amount is not None:
        check_amount(amount, allow_zero=not enabled, what="recharge amount")


def _check_payable(conn: sa.Connection, account_id: int, amount: int) -> None:
    """Refuse an auto-recharge amount no card payment can take in the account's currency."""
    currency = currency_of(conn, account_id)
    if currency is None:
        raise AccountNotFoundError(f"there is no account {account_id}", account_id=account_id)
    try:
        minor_units(amount, currency)
    except PaymentSetupError as refusal:
        raise PaymentSetupError(
            f"the auto-recharge amount cannot be paid by card: {refusal.detail}",
            field="amount",
        ) from None


@refuse_unmigrated()
def configure(
    conn: sa.Connection,
    account_id: int,
    *,
    enabled: bool,
    threshold: int | None = None,
    amount: int | None = None,
    now: int,
) -> RechargeSettings:
    """Set auto-recharge: when paid credit falls under ``threshold``, buy ``amount`` more.

    Turning it on needs both (`invalid_request` naming the one left out); an amount no card
    payment can take in the account's currency (not whole cents) is refused
    (`payment_setup_invalid`), as buying that amount is. Turning it off is never refused for
    its amount: a threshold left out (None), or an amount left out or 0, keeps the stored one
    (with no row stored and no amount given nothing is written: it is off already, and the
    settings read as off with threshold and amount 0). Turning it on clears the decline count
    left by an earlier automatic disable and, when paid credit is already under the
    threshold, queues a recharge at once (`queue_if_needed`, in this transaction).
    """
    _check_setting_call(account_id, now)
    _check_settings(enabled, threshold, amount)
    _lock_account(conn, account_id)
    stored = _settings_row(conn, account_id) is not None
    if enabled:
        assert amount is not None
        _check_payable(conn, account_id, amount)
    values: dict[str, Any] = {"enabled": enabled, "updated_at": now}
    if threshold is not None:
        values["threshold"] = threshold
    if amount:
        values["amount"] = amount
    if not stored and not amount:
        return RechargeSettings(account_id, False, 0, 0, None, None, 0, None)
    if enabled:
        values.update(consecutive_declines=0, disabled_reason=None)
    _write_settings(conn, account_id, values, stored=stored)
    if enabled:
        book = Book(conn, now)
        queue_if_needed(book, book.account(account_id))
        book.flush()
    found = get_settings_of(conn, account_id)
    assert found is not None
    return found


@refuse_unmigrated()
def set_payment_method(
    conn: sa.Connection,
    account_id: int,
    *,
    customer: str | None,
    payment_method: str | None,
    now: int,
) -> RechargeSettings:
    """Save the provider's customer and payment-method references used for every payment
    (None clears one). Each is text of at most 200 characters without NUL characters, refused
    with `invalid_request` otherwise (SQLite stored what PostgreSQL refused)."""
    _check_setting_call(account_id, now)
    check_text(customer, "customer")
    check_text(payment_method, "payment method")
    _upsert(
        conn,
        account_id,
        {"customer": customer, "payment_method": payment_method, "updated_at": now},
    )
    found = get_settings_of(conn, account_id)
    assert found is not None
    return found


# ---- queuing (inside a debit's transaction) ----------------------------------------------------


def in_flight(conn: sa.Connection, account_id: int) -> Recharge | None:
    """The account's pending or processing recharge, if any."""
    row = conn.execute(_IN_FLIGHT, {"account_id": account_id}).first()
    return None if row is None else _recharge(row)


LIMIT_POSTPONED = "the monthly limit is reached; retried when the next period starts"
"""The `last_error` of a recharge postponed to the period's end by the monthly limit."""


def resume_postponed(conn: sa.Connection, account_id: int, now: int) -> int:
    """Make recharges postponed by the monthly limit due at once (the limit was just changed:
    the next pass decides again, and postpones them again if the limit is still reached);
    returns how many."""
    done = conn.execute(
        sa.update(recharges)
        .where(
            recharges.c.account_id == account_id,
            recharges.c.state == constant("pending"),
            recharges.c.last_error == LIMIT_POSTPONED,
            recharges.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return int(done.rowcount)


def limit_reached(book: Book, state: AccountState) -> bool:
    """True when this period's paid usage has reached the monthly limit now in force.

    Only the usage counts: the period's `limit_reached` flag records that the
    `monthly_limit.reached` event was sent (a refused charge sets it too, and raising the limit
    does not clear it), so it must not keep auto-recharge off once the limit allows more.
    """
    if state.monthly_limit is None:
        return False
    return book.period_usage(state) >= state.monthly_limit


def paid_available(state: AccountState, now: int) -> int:
    """Paid credit (purchased and refunded) usable at ``now`` and not reserved by holds."""
    return sum(g.available for g in state.grants.values() if g.paid and g.usable(now))


def queue_if_needed(book: Book, state: AccountState) -> int | None:
    """Queue a recharge when auto-recharge is on, paid credit is under the threshold, the
    monthly limit is not reached and none is in flight. Returns the new recharge's sequence.

    Runs inside the caller's transaction (the account is locked), so it commits or rolls back
    with the debit (or the settings change) that caused it. Which credit the debit took does
    not matter: a charge of free credit leaves paid credit under the threshold too.
    """
    if not state.recharge_loaded:
        row = _settings_row(book.conn, state.id)
        state.recharge = (row.threshold, row.amount) if row is not None and row.enabled else None
        state.recharge_loaded = True
    return _queue(book, state)


def queue_many(book: Book, states: list[AccountState]) -> None:
    """`queue_if_needed` for many accounts; settings not read with the accounts are read in
    one query."""
    unknown = [s for s in states if not s.recharge_loaded]
    if len(unknown) == 1:
        queue_if_needed(book, unknown[0])
        unknown = []
    if unknown:
        rows = {
            row.account_id: row
            for row in book.conn.execute(_SETTINGS_MANY, {"account_ids": [s.id for s in unknown]})
        }
        for state in unknown:
            row = rows.get(state.id)
            state.recharge = (
                (row.threshold, row.amount) if row is not None and row.enabled else None
            )
            state.recharge_loaded = True
    for state in states:
        _queue(book, state)


def _queue(book: Book, state: AccountState) -> int | None:
    if state.recharge is None:
        return None
    threshold, amount = state.recharge
    if paid_available(state, book.now) >= threshold or limit_reached(book, state):
        return None
    if in_flight(book.conn, state.id) is not None:
        return None
    return _insert_recharge(book.conn, state.id, amount, book.now)


def _insert_recharge(conn: sa.Connection, account_id: int, amount: int, due: int) -> int | None:
    last = conn.execute(
        sa.select(sa.func.max(recharges.c.sequence)).where(recharges.c.account_id == account_id)
    ).scalar()
    sequence = (last or 0) + 1
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(recharges)
    done = conn.execute(
        insert.values(
            account_id=account_id,
            sequence=sequence,
            amount=amount,
            state="pending",
            idempotency_key=recharge_key(account_id, sequence),
            attempts=0,
            next_attempt_at=due,
            created_at=due,
        ).on_conflict_do_nothing()
    )
    return sequence if done.rowcount == 1 else None


# ---- processing (the worker) -------------------------------------------------------------------


def _recharge(row: Any) -> Recharge:
    return Recharge(
        id=row.id,
        account_id=row.account_id,
        sequence=row.sequence,
        amount=row.amount,
        state=row.state,
        idempotency_key=row.idempotency_key,
        attempts=row.attempts,
        next_attempt_at=from_micros(row.next_attempt_at),
        provider_reference=row.provider_reference,
        last_error=row.last_error,
        grant_id=row.grant_id,
    )


def list_recharges(conn: sa.Connection, account_id: int) -> list[Recharge]:
    """Every recharge of the account, oldest first."""
    query = (
        sa.select(recharges).where(recharges.c.account_id == account_id).order_by(recharges.c.id)
    )
    return [_recharge(r) for r in conn.execute(query)]


@dataclass(frozen=True)
class RechargeOutcome:
    """What one processed recharge came to: succeeded, declined, error, postponed, canceled."""

    recharge_id: int
    account_id: int
    sequence: int
    outcome: str
    reason: str | None = None


def _claim(engine: sa.Engine, now: int, batch: int) -> tuple[list[Recharge], list[RechargeOutcome]]:
    """Claim due recharges (pending, or processing with an expired lease) in one transaction.

    Those that must not be paid now are settled here: canceled when auto-recharge was turned
    off, the subscription is no longer active or credit is no longer low (only if never sent to
    the provider), postponed to the next
    period while the monthly limit is reached. One never sent takes the amount set now.
    """
    claimed: list[Recharge] = []
    settled: list[RechargeOutcome] = []
    with writing(engine) as conn:
        query = (
            sa.select(recharges)
            .where(
                recharges.c.state.in_((constant("pending"), constant("processing"))),
                recharges.c.next_attempt_at <= now,
            )
            .order_by(recharges.c.next_attempt_at, recharges.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        rows = conn.execute(query).all()
        # Lock the accounts in id order, as batches of charges do: locked in the order the
        # recharges were due, a claim and a batch over the same two accounts deadlocked on
        # PostgreSQL (and the whole claim was rolled back).
        book = Book(conn, now)
        for account_id in sorted({row.account_id for row in rows}):
            book.account(account_id)
        for row in rows:
            state = book.account(row.account_id)
            cfg = _settings_row(conn, row.account_id)
            untouched = row.attempts == 0
            reason = None
            if untouched and (cfg is None or not cfg.enabled):
                reason = "auto-recharge is turned off"
            elif untouched and state.status != "active":
                reason = f"the subscription is {state.status}"
            elif untouched and paid_available(state, now) >= (cfg.threshold if cfg else 0):
                reason = "paid credit is no longer under the threshold"
            if reason is not None:
                conn.execute(
                    sa.update(recharges)
                    .where(recharges.c.id == row.id)
                    .values(state="canceled", last_error=reason, finished_at=now)
                )
                settled.append(
                    RechargeOutcome(row.id, row.account_id, row.sequence, "canceled", reason)
                )
                continue
            if limit_reached(book, state):
                reason = LIMIT_POSTPONED
                conn.execute(
                    sa.update(recharges)
                    .where(recharges.c.id == row.id)
                    .values(
                        state="pending",
                        next_attempt_at=state.period_end_at(now),
                        last_error=reason,
                    )
                )
                settled.append(
                    RechargeOutcome(row.id, row.account_id, row.sequence, "postponed", reason)
                )
                continue
            # Never sent: it buys the amount set now (the setting may have changed since it
            # was queued). Once sent, its amount is fixed: retries repeat the same payment.
            # The attempt is counted by `_pay`, just before the provider is asked: a worker
            # killed while paying the first of a batch leaves the others never sent.
            amount = cfg.amount if untouched and cfg is not None else row.amount
            conn.execute(
                sa.update(recharges)
                .where(recharges.c.id == row.id)
                .values(
                    state="processing",
                    amount=amount,
                    claimed_at=now,
                    next_attempt_at=now + LEASE_MICROS,
                )
            )
            claimed.append(replace(_recharge(row), amount=amount))
    return claimed, settled


def _pay(engine: sa.Engine, provider: PaymentProvider, item: Recharge) -> PaymentResult:
    """Count the attempt (from now on the recharge may have been paid: it is never canceled
    and keeps its amount), then ask the provider under the recharge's key."""
    with writing(engine) as conn:
        conn.execute(
            sa.update(recharges)
            .where(recharges.c.id == item.id)
            .values(attempts=recharges.c.attempts + 1)
        )
        cfg = get_settings_of(conn, item.account_id)
        currency = str(currency_of(conn, item.account_id))
    request = PaymentRequest(
        account_id=str(item.account_id),
        amount=item.amount,
        currency=currency,
        idempotency_key=item.idempotency_key,
        customer=cfg.customer if cfg else None,
        payment_method=cfg.payment_method if cfg else None,
        description=f"talktime auto-recharge #{item.sequence}",
    )
    try:
        return provider.charge(request)
    except TalktimeError as refusal:  # manual provider, no saved card: a decline that lasts
        return PaymentResult("declined", None, f"{refusal.code}: {refusal.detail}")
    except Exception as exc:  # a provider bug or outage must not stop the other recharges
        log.exception("recharge %s: payment provider failed", item.idempotency_key)
        return PaymentResult("error", None, f"{type(exc).__name__}: {exc}")


def _clip(text: str | None, limit: int) -> str | None:
    """A provider's free text cut to fit its column (PostgreSQL refuses a longer string)."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


def _record(
    engine: sa.Engine, item: Recharge, result: PaymentResult, now: int, settings: Settings
) -> RechargeOutcome:
    """Write the payment's outcome: grant on success, back off or give up on a decline."""
    error = _clip(result.reason, LAST_ERROR_LENGTH)
    with writing(engine) as conn:
        book = Book(conn, now)
        state = book.account(item.account_id)  # lock the account first, then the recharge
        row = conn.execute(sa.select(recharges).where(recharges.c.id == item.id)).first()
        assert row is not None
        if row.state not in ("pending", "processing"):
            return RechargeOutcome(item.id, item.account_id, item.sequence, row.state)
        where = recharges.c.id == item.id
        if result.outcome == "succeeded":
            granted = grants.issue(
                book,
                item.account_id,
                "purchased",
                item.amount,
                item.idempotency_key,
                source=f"recharge:{item.sequence}",
                entry_kind=RECHARGE,
            )
            conn.execute(
                sa.update(recharges)
                .where(where)
                .values(
                    state="succeeded",
                    provider_reference=result.reference,
                    grant_id=granted.grant.id,
                    finished_at=now,
                    last_error=None,
                )
            )
            conn.execute(
                sa.update(recharge_settings)
                .where(recharge_settings.c.account_id == item.account_id)
                .values(consecutive_declines=0)
            )
            book.event(
                item.account_id,
                RECHARGE_SUCCEEDED,
                {
                    "recharge_id": item.id,
                    "sequence": item.sequence,
                    "amount": item.amount,
                    "grant_id": granted.grant.id,
                    "payment_reference": result.reference,
                    "paid_balance": paid_available(state, now),
                },
            )
            book.flush()
            return RechargeOutcome(item.id, item.account_id, item.sequence, "succeeded")
        if result.outcome == "error":
            conn.execute(
                sa.update(recharges)
                .where(where)
                .values(
                    state="pending",
                    last_error=error,
                    next_attempt_at=now + backoff(row.attempts, settings.recharge_backoff_seconds),
                )
            )
            return RechargeOutcome(item.id, item.account_id, item.sequence, "error", result.reason)
        # declined: this recharge is over; the next one (new sequence, new key) waits longer
        conn.execute(
            sa.update(recharges)
            .where(where)
            .values(
                state="declined",
                provider_reference=result.reference,
                last_error=error,
                finished_at=now,
            )
        )
        cfg = _settings_row(conn, item.account_id)
        declines = (cfg.consecutive_declines if cfg else 0) + 1
        values: dict[str, Any] = {"consecutive_declines": declines}
        if declines >= settings.recharge_max_declines:
            values.update(
                enabled=False,
                disabled_reason=_clip(
                    f"{declines} consecutive declines; last: {result.reason}",
                    DISABLED_REASON_LENGTH,
                ),
            )
            book.event(
                item.account_id,
                RECHARGE_FAILED,
                {
                    "recharge_id": item.id,
                    "sequence": item.sequence,
                    "amount": item.amount,
                    "reason": result.reason,
                    "consecutive_declines": declines,
                    "auto_recharge": "disabled",
                },
            )
        else:
            _insert_recharge(
                conn,
                item.account_id,
                cfg.amount if cfg else item.amount,
                now + backoff(declines, settings.recharge_backoff_seconds),
            )
        conn.execute(
            sa.update(recharge_settings)
            .where(recharge_settings.c.account_id == item.account_id)
            .values(values)
        )
        book.flush()
        return RechargeOutcome(item.id, item.account_id, item.sequence, "declined", result.reason)


_LOST_RACE_TRIES: Final = 3


def _again_if_lost(work: Callable[[], _T]) -> _T:
    """Run ``work`` (one transaction) again when PostgreSQL made it a deadlock's (or a
    serialization failure's) victim. A claim locks recharge rows, then their accounts; a
    record locks the account, then its recharge. So a claim retaking a lease that ran out
    can deadlock with the record of the worker that held it, while a charge holds the
    account. Both are safe to run again: a claim skips what is no longer due, a record
    what is no longer pending or processing."""
    for attempt in range(_LOST_RACE_TRIES):
        try:
            return work()
        except sa.exc.DBAPIError as exc:
            if not lost_race(exc) or attempt == _LOST_RACE_TRIES - 1:
                raise
            log.warning("recharge transaction lost a race (%s); running it again", exc.orig)
    raise AssertionError("unreachable")


@refuse_unmigrated()
def process_recharges(
    engine: sa.Engine,
    provider: PaymentProvider,
    now: datetime | None = None,
    *,
    batch: int = 100,
    settings: Settings | None = None,
) -> list[RechargeOutcome]:
    """Claim the recharges due at ``now`` (default: the current time), pay them and record the
    results; returns one outcome per recharge looked at. Safe to run from many workers at once:
    claims skip rows another worker holds, and a retry reuses the recharge's key."""
    settings = settings or get_settings()
    check_moment(now, "now")
    at = to_micros(now or utcnow())
    claimed, outcomes = _again_if_lost(lambda: _claim(engine, at, batch))
    for item in claimed:
        result = _pay(engine, provider, item)
        try:
            outcomes.append(_again_if_lost(partial(_record, engine, item, result, at, settings)))
        except TalktimeError as refusal:  # stays claimed: retried, same key, when the lease ends
            log.error("recharge %s not recorded: %s", item.idempotency_key, refusal.detail)
            outcomes.append(
                RechargeOutcome(item.id, item.account_id, item.sequence, "error", refusal.detail)
            )
    return outcomes


# ---- purchases ---------------------------------------------------------------------------------


def _purchase_replay(book: Book, account_id: int, key: str, fp: str) -> GrantResult | None:
    stored = idempotency.replay(
        idempotency.lookup(book.conn, account_id, [key]).get(key), key, PURCHASE, fp
    )
    return None if stored is None else from_json(GrantResult, stored, replayed=True)


@refuse_unmigrated()
def purchase(
    engine: sa.Engine,
    account_id: int,
    amount: int,
    key: str,
    provider: PaymentProvider,
    *,
    now: datetime | None = None,
    on_grant: Callable[[Book, GrantResult], None] | None = None,
    payment_key: str | None = None,
) -> GrantResult:
    """Buy ``amount`` micro-units of credit with the account's saved payment method.

    The credit is granted only after the provider took the money. Idempotent: a key that
    succeeded returns the original grant without paying again (a different amount under it is
    an `idempotency_conflict`); a retry after a provider error reuses the same payment key, so
    the card is never charged twice. A decline raises `PaymentDeclinedError` and grants nothing;
    it is counted, so a retry under the same key (say after the customer changed card) is a new
    payment attempt under a key of its own (`attempt_payment_key`) instead of the provider's
    replay of its decline.
    ``on_grant`` runs inside the transaction of a new grant (never for a replay), so what it
    writes commits with the credit or not at all. ``payment_key`` is the provider's (and the
    grant's) key, by default `purchase_payment_key` of ``key``.
    """
    check_id(account_id, "account id")
    check_amount(amount, what="purchase amount")
    idempotency.check_key(key)
    idempotency.check_caller_key(key)
    check_moment(now, "now")
    if payment_key is not None:
        idempotency.check_key(payment_key)
    base = payment_key or purchase_payment_key(account_id, key)
    at = to_micros(now or utcnow())
    fp = idempotency.fingerprint(PURCHASE, {"amount": amount})
    with writing(engine) as conn:
        book = Book(conn, at)
        state = book.account(account_id)
        replayed = _purchase_replay(book, state.id, key, fp)
        if replayed is not None:
            return replayed
        _tie_key(conn, state.id, key, fp, at)
        cfg = get_settings_of(conn, state.id)
        currency = str(currency_of(conn, state.id))
        declines = _declines(conn, state.id, key)
    paid_under = attempt_payment_key(account_id, base, declines)
    request = PaymentRequest(
        account_id=str(account_id),
        amount=amount,
        currency=currency,
        idempotency_key=paid_under,
        customer=cfg.customer if cfg else None,
        payment_method=cfg.payment_method if cfg else None,
        description="talktime credit purchase",
    )
    result = provider.charge(request)
    if result.outcome == "declined":
        with writing(engine) as conn:
            _count_decline(conn, account_id, key, declines, at)
            _free_key(conn, account_id, key)
        raise PaymentDeclinedError(
            f"the payment of {money.format(amount)} {currency} was declined ({result.reason}); "
            "no credit was added: use another payment method and try again",
            reason=result.reason,
            payment_reference=result.reference,
        )
    if result.outcome != "succeeded":
        # the provider may have taken the money before the answer was lost: say so, and that
        # only a retry under this key settles it (an operator's grant by hand would not end
        # the purchase, and the retry would then credit it a second time)
        raise PaymentUnavailableError(
            f"the payment's outcome is unknown ({result.reason}): no credit has been added, "
            "but the card may have been charged; retry with the same idempotency key, which "
            "never charges twice and adds the credit if the payment went through",
            reason=result.reason,
            account_id=account_id,
            payment_key=paid_under,
        )
    with writing(engine) as conn:
        book = Book(conn, at)
        book.account(account_id)
        replayed = _purchase_replay(book, account_id, key, fp)  # a concurrent twin won
        if replayed is not None:
            return replayed
        granted = grants.issue(
            book,
            account_id,
            "purchased",
            amount,
            paid_under,
            source=f"purchase:{result.reference}",
        )
        book.remember(account_id, key, PURCHASE, fp, to_json(granted))
        book.flush()
        if on_grant is not None:
            on_grant(book, granted)
    return granted
