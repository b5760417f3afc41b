"""Call use cases: authorize (hold the first increments), extend, complete (price every leg,
settle the hold, release the rest) and read a call.

The hold covers the original leg only, in whole billing increments, up to `call_hold_seconds`
per step or what the available credit covers; `max_duration_seconds` is the time held so far.
Legs added on completion (forwarding, transfers) are charged from the hold and the remaining
credit; any shortfall is the wallet's explicit `uncollected` entry, never a negative balance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from talktime import policy
from talktime.config import Settings
from talktime.errors import TalktimeError, naming
from talktime.rating import Call, RateCard, VoiceRate, load_card, price_call
from talktime.rating.card import MAX_LEG_SECONDS
from talktime.service import cards, users
from talktime.service.common import (
    balance_dict,
    fmt,
    iso,
    new_id,
    now_micros,
    with_money_facts,
)
from talktime.service.errors import CallStateError, NotFoundError
from talktime.service.idempotency import KeepWritesError, StoredResponse, run_once
from talktime.service.messages import account_number, own_number
from talktime.store.api_tables import calls
from talktime.store.wallet_tables import holds as wallet_holds
from talktime.wallet import holds
from talktime.wallet.book import AccountState, Book
from talktime.wallet.errors import (
    HoldNotPendingError,
    InsufficientCreditError,
    MonthlyLimitReachedError,
)

SECOND = 1_000_000
MIN_TTL_S = 3600


@dataclass(frozen=True)
class CallRequest:
    """A call about to start: `from_` is the caller ID (outbound) or the caller (inbound);
    `to` is the called number (outbound) or the account's receiving number (inbound)."""

    direction: str
    from_: str
    to: str
    user: str

    def fingerprint_data(self) -> dict[str, Any]:
        return {"direction": self.direction, "from": self.from_, "to": self.to, "user": self.user}


def leg_rate(card: RateCard, direction: str, from_: str, to: str) -> VoiceRate:
    """The rate of a call's original leg; a refusal names the number at fault (`from`: a caller
    ID that is no valid number; `to`: an invalid or unpriced called or receiving number)."""
    origin = None
    if direction == "outbound":
        with naming("from"):
            origin = card.classify(from_).country
    with naming("to"):
        return card.voice_rate("outbound" if direction == "outbound" else "inbound", origin, to)


def _steps(rate: VoiceRate, start: int, window: int) -> list[int]:
    """Billed durations after ``start`` seconds, one more increment each, up to ``window`` more
    and never past `MAX_LEG_SECONDS` (the longest leg a completion can report; a step that
    only passes it because of the increments is cut to it, which costs the same)."""
    out: list[int] = []
    if start >= MAX_LEG_SECONDS:
        return out
    step = rate.first_increment_s if start == 0 else rate.next_increment_s
    total = start + step
    while not out or total <= start + window:
        out.append(min(total, MAX_LEG_SECONDS))
        if total >= MAX_LEG_SECONDS:
            break
        total += rate.next_increment_s
    return out


def reserve(rate: VoiceRate, held_s: int, window: int, available: int) -> tuple[int, int]:
    """(new covered seconds, extra amount) for the most increments of ``window`` that
    ``available`` credit pays for beyond ``held_s``; (held_s, 0) if not even one."""
    already = rate.cost(held_s)
    best = (held_s, 0)
    for seconds in _steps(rate, held_s, window):
        extra = rate.cost(seconds) - already
        if extra > available:
            break
        best = (seconds, extra)
    return best


def holdable(book: Book, state: AccountState) -> int:
    """The most a hold may reserve now: the available credit, taken in consumption order,
    where the paid part stops at what the monthly limit leaves after this period's paid usage
    and the paid credit pending holds reserve (a hold past it would be refused whole)."""
    live = state.live(book.now)
    if state.monthly_limit is None:
        return sum(g.available for g in live)
    left = max(state.monthly_limit - book.period_usage(state) - state.paid_held(), 0)
    total = 0
    for g in live:
        if not g.paid:
            total += g.available
            continue
        take = min(g.available, left)
        total += take
        left -= take
        if take < g.available:  # the next amount would come from this paid grant
            break
    return total


def _limit_refusal(
    book: Book, state: AccountState, amount: int, currency: str, max_duration_seconds: int
) -> KeepWritesError | None:
    """The monthly-limit refusal of a hold of ``amount`` (its `monthly_limit.reached` event
    kept), or None when the limit is not what stops it."""
    live = state.live(book.now)
    if amount > sum(g.available for g in live):
        return None
    try:
        paid = sum(take for g, take in book.plan(live, amount) if g.paid)
        book.check_limit(state, paid)
    except MonthlyLimitReachedError as refusal:
        refusal.extra["max_duration_seconds"] = max_duration_seconds
        book.flush()
        return KeepWritesError(with_money_facts(refusal, currency))
    return None


def _ttl(covered_s: int) -> int:
    return max(2 * covered_s, MIN_TTL_S) * SECOND


def _row(conn: sa.Connection, account_id: int, call_id: str) -> Any:
    row = conn.execute(
        sa.select(
            calls,
            wallet_holds.c.state.label("hold_state"),
            wallet_holds.c.expires_at.label("hold_expires_at"),
        )
        .outerjoin(wallet_holds, wallet_holds.c.id == calls.c.hold_id)
        .where(calls.c.id == call_id, calls.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFoundError(f"No call {call_id} in this account.")
    return row


def _hold_state(row: Any) -> str | None:
    """The hold's state as the wallet treats it now: a pending hold past its deadline is
    `expired` already (an extend is refused) before the worker's expiry run records it."""
    if row.hold_state == "pending" and row.hold_expires_at <= now_micros():
        return "expired"
    return cast(str | None, row.hold_state)


def call_dict(row: Any, balance: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stored call as API data."""
    return {
        "id": row.id,
        "direction": row.direction,
        "from": row.from_number,
        "to": row.to_number,
        "user": row.user_id,
        "state": row.state,
        "max_duration_seconds": row.max_duration_seconds,
        "held": fmt(row.authorized_amount),
        # the hold behind `held`: `pending` until its deadline, then `expired` (the worker
        # released it: nothing is held any more, an extend is 409, completing still bills)
        "hold_state": _hold_state(row),
        "hold_expires_at": None if row.hold_expires_at is None else iso(row.hold_expires_at),
        "amount": None if row.amount is None else fmt(row.amount),
        "uncollected": None if row.uncollected is None else fmt(row.uncollected),
        "currency": row.currency,
        "rate_card": row.card,
        "lines": json.loads(row.legs) if row.legs else [],
        "authorized_at": iso(row.authorized_at),
        "extended_at": None if row.extended_at is None else iso(row.extended_at),
        "completed_at": None if row.completed_at is None else iso(row.completed_at),
        "balance": balance,
    }


def _not_covered(rate: VoiceRate, available: int, currency: str) -> TalktimeError:
    needed = rate.cost(rate.first_increment_s)
    return with_money_facts(
        InsufficientCreditError(
            "The credit does not cover the first billing increment of this call; add credit "
            "and try again (nothing was held).",
            needed=needed,
            available=available,
            max_duration_seconds=0,
        ),
        currency,
    )


def authorize_call(
    engine: sa.Engine, settings: Settings, account_id: int, req: CallRequest, key: str
) -> StoredResponse:
    """Hold the first increments of a call and say how long the credit lets it run."""

    def work(conn: sa.Connection) -> tuple[int, Any]:
        book = cards.charging_book(conn, settings)
        wallet_key = f"call:{key}"
        state = book.account(account_id, wallet_key)
        now = book.now
        policy.require_active_subscription(state.status)
        policy.require_permission(users.actor(conn, account_id, req.user), "calls.make")
        if req.direction == "inbound":
            # the account's own released number is named as released (as for SMS), not as
            # "not a number of this account"
            receiving = own_number(conn, req.to, account_id, account_number(conn, req.to))
            with naming("to"):
                policy.require_receiving_number(receiving, req.to, account_id)
        card = cards.pricing_card(conn, account_id, settings)
        rate = leg_rate(card, req.direction, req.from_, req.to)
        available = state.available(now)
        covered, amount = reserve(rate, 0, settings.call_hold_seconds, holdable(book, state))
        if covered == 0:
            needed = rate.cost(rate.first_increment_s)
            raise _limit_refusal(book, state, needed, card.currency, 0) or _not_covered(
                rate, available, card.currency
            )
        call_id = new_id("call")
        hold_id = None
        balance = state.balances(now)
        if amount > 0:
            held = holds.authorize(
                book, account_id, amount, wallet_key, _ttl(covered), reference=call_id
            )
            hold_id, balance = held.hold.id, held.balance
        book.flush()
        conn.execute(
            calls.insert().values(
                id=call_id,
                account_id=account_id,
                user_id=req.user,
                direction=req.direction,
                from_number=req.from_,
                to_number=req.to,
                state="authorized",
                hold_id=hold_id,
                card=card.ref,
                authorized_amount=amount,
                max_duration_seconds=covered,
                currency=card.currency,
                authorized_at=now,
            )
        )
        row = _row(conn, account_id, call_id)
        return 201, call_dict(row, balance_dict(balance, card.currency))

    return run_once(engine, account_id, key, "call.authorize", req.fingerprint_data(), work)


def _card_of(row: Any, settings: Settings) -> RateCard:
    name, _, version = str(row.card).partition("@")
    return load_card(name, version or None, directory=settings.rate_cards_dir)


def _may_go_on(conn: sa.Connection, state: AccountState, row: Any) -> None:
    """An extend is held to the call policy as of now: the subscription still active and the
    call's user still allowed `calls.make` (a cancellation or a restriction made during the
    call stops it at its next extend; completing it still bills what happened)."""
    try:
        policy.require_active_subscription(state.status)
        policy.require_permission(users.actor(conn, state.id, row.user_id), "calls.make")
    except (policy.SubscriptionInactiveError, policy.PermissionDeniedError) as refusal:
        raise type(refusal)(
            f"{refusal.detail} The call was not extended; complete it with what happened "
            "(it is still billed).",
            **refusal.extra,
        ) from None


def extend_call(
    engine: sa.Engine, settings: Settings, account_id: int, call_id: str, key: str
) -> StoredResponse:
    """Hold the next increments of a long call; returns the new maximum duration."""

    def work(conn: sa.Connection) -> tuple[int, Any]:
        row = _row(conn, account_id, call_id)
        book = cards.charging_book(conn, settings)
        state = book.account(account_id)
        now = book.now
        row = _row(conn, account_id, call_id)  # again, now that the account is locked
        if row.state != "authorized":
            raise CallStateError(f"Call {call_id} is {row.state}; only a live call can extend.")
        if row.max_duration_seconds >= MAX_LEG_SECONDS:
            raise CallStateError(
                f"Call {call_id} already holds the longest call leg talktime bills "
                f"({MAX_LEG_SECONDS} s, a week); complete it with what happened and authorize "
                "a new call to go on.",
                call=call_id,
                max_duration_seconds=row.max_duration_seconds,
            )
        _may_go_on(conn, state, row)
        card = _card_of(row, settings)
        rate = leg_rate(card, row.direction, row.from_number, row.to_number)
        available = state.available(now)
        covered, extra = reserve(
            rate, row.max_duration_seconds, settings.call_hold_seconds, holdable(book, state)
        )
        if covered == row.max_duration_seconds:
            needed = rate.cost(covered + rate.next_increment_s) - rate.cost(covered)
            raise _limit_refusal(book, state, needed, card.currency, covered) or with_money_facts(
                InsufficientCreditError(
                    "The credit does not cover another billing increment of this call; "
                    "add credit to let it run longer.",
                    needed=needed,
                    available=available,
                    max_duration_seconds=covered,
                ),
                card.currency,
            )
        balance = state.balances(now)
        if row.hold_id is not None:
            try:
                held = holds.extend(book, row.hold_id, extra, f"call-extend:{key}", _ttl(covered))
            except HoldNotPendingError:
                raise CallStateError(
                    f"Call {call_id} can no longer be extended: its credit hold lapsed after "
                    "it went too long without an extend. Complete it with what happened (it "
                    "is still billed) and authorize a new call to go on.",
                    call=call_id,
                ) from None
            balance = held.balance
        book.flush()
        conn.execute(
            calls.update()
            .where(calls.c.id == call_id)
            .values(
                max_duration_seconds=covered,
                authorized_amount=row.authorized_amount + extra,
                extended_at=now,
            )
        )
        return 200, call_dict(_row(conn, account_id, call_id), balance_dict(balance, card.currency))

    return run_once(engine, account_id, key, "call.extend", {"call": call_id}, work)


def complete_call(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    call_id: str,
    description: dict[str, Any],
    key: str,
) -> StoredResponse:
    """Price every leg of what happened, settle the hold with it and release the rest.

    ``description`` holds `duration` and optional `forward` and `transfers` (the rating JSON
    shape without direction and numbers, which the call already has).
    """

    def work(conn: sa.Connection) -> tuple[int, Any]:
        _row(conn, account_id, call_id)
        book = cards.charging_book(conn, settings)
        book.account(account_id)  # lock the account, then read the call again
        now = book.now
        row = _row(conn, account_id, call_id)
        if row.state != "authorized":
            raise CallStateError(f"Call {call_id} is already {row.state}.")
        card = _card_of(row, settings)
        call = Call.from_dict(
            {
                **description,
                "direction": row.direction,
                "from": row.from_number,
                "to": row.to_number,
            }
        )
        quote = price_call(card, call)
        lines = [line.to_dict() for line in quote.lines]
        hold_id = row.hold_id
        if hold_id is None:
            # The first leg was free, so nothing was held: settle an empty hold instead, so
            # that legs known only now are charged as on any call, never refused (the call
            # happened) and any shortfall is recorded as uncollected.
            hold_id = holds.authorize(
                book,
                account_id,
                0,
                f"call-end-hold:{key}",
                _ttl(0),
                reference=call_id,
                allow_zero=True,
            ).hold.id
        settled = holds.settle(book, hold_id, quote.total, f"call-end:{key}", lines)
        uncollected, balance = settled.uncollected, settled.balance
        book.flush()
        conn.execute(
            calls.update()
            .where(calls.c.id == call_id)
            .values(
                state="completed",
                hold_id=hold_id,
                amount=quote.total,
                uncollected=uncollected,
                legs=json.dumps(lines),
                completed_at=now,
            )
        )
        return 200, call_dict(_row(conn, account_id, call_id), balance_dict(balance, card.currency))

    return run_once(
        engine, account_id, key, "call.complete", {"call": call_id, **description}, work
    )


def get_call(engine: sa.Engine, account_id: int, call_id: str) -> dict[str, Any]:
    """A call of the account (404 for another account's call)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return call_dict(_row(conn, account_id, call_id))
