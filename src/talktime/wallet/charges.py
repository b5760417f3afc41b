"""Charges: take an amount from an account's grants in consumption order, all or nothing.

`charge` works inside a `Book` (an open transaction), so a caller can charge as part of a larger
unit of work; `charge_many` applies a batch with a result (or refusal) per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from talktime.errors import TalktimeError
from talktime.wallet.book import Book, check_amount, check_text, new_transaction_id
from talktime.wallet.errors import InsufficientCreditError
from talktime.wallet.idempotency import charge_fingerprint
from talktime.wallet.inputs import check_id, encode_lines
from talktime.wallet.model import USAGE, ChargeResult, charge_json, from_json

OPERATION = "charge"


@dataclass(frozen=True)
class ChargeItem:
    """One charge of a batch."""

    account_id: int
    amount: int
    key: str
    reference: str | None = None
    lines: Any = None


def charge(
    book: Book,
    account_id: int,
    amount: int,
    key: str,
    reference: str | None = None,
    lines: Any = None,
    *,
    judge: bool = True,
) -> ChargeResult:
    """Debit ``amount`` from the account inside ``book``; refuse the whole of it if the
    available credit or the monthly limit does not allow it (nothing changes then).

    A key already used for the same request returns the stored result (`replayed=True`).
    With ``judge`` False the caller judges `balance.low` / `credit.depleted` itself, once for
    several debits (the monthly cycle's rents, judged as one debit).
    """
    check_id(account_id, "account id")
    check_amount(amount)
    check_text(reference, "reference")
    lines_json = encode_lines(lines)
    state = book.account(account_id, key if isinstance(key, str) else None)
    fp = charge_fingerprint(OPERATION, amount, reference, lines)
    stored = book.replay(state.id, key, OPERATION, fp)
    if stored is not None:
        return from_json(ChargeResult, stored, replayed=True)
    now = book.now
    live = state.live(now)
    available = sum(g.available for g in live)
    if amount > available:
        raise InsufficientCreditError(
            f"this needs {state.shown(amount)} but only {state.shown(available)} is "
            "available; add credit and try again (nothing was charged)",
            needed=amount,
            available=available,
        )
    takes = book.plan(live, amount)
    paid = sum(take for g, take in takes if g.paid)
    book.check_limit(state, paid)
    transaction_id = new_transaction_id()
    for g, take in takes:
        g.remaining -= take
        book.entry(
            transaction_id,
            state.id,
            g.id,
            -take,
            USAGE,
            reference=reference,
            key=key,
            lines_json=lines_json,
        )
    book.add_usage(state, paid)
    book.debited(state)
    # Every take came out of available credit, so it fell by exactly the amount.
    if judge:
        book.debit_events(state, available, available - amount)
    result = ChargeResult(
        transaction_id=transaction_id,
        account_id=state.id,
        amount=amount,
        from_free=amount - paid,
        from_paid=paid,
        balance=state.balances(now),
        reference=reference,
        created_at=book.now_datetime,
    )
    book.remember(state.id, key, OPERATION, fp, charge_json(result))
    return result


def charge_many(book: Book, items: list[ChargeItem]) -> list[ChargeResult | TalktimeError]:
    """Apply a batch inside ``book``: each item succeeds or is refused on its own; a refused
    item changes nothing. Accounts are locked in id order first."""
    book.load([(item.account_id, item.key) for item in items])
    results: list[ChargeResult | TalktimeError] = []
    for item in items:
        try:
            results.append(
                charge(book, item.account_id, item.amount, item.key, item.reference, item.lines)
            )
        except TalktimeError as refusal:
            results.append(refusal)
    return results
