"""Phone numbers: add one (classified and priced by the account's rate card, its first month
charged in the same transaction), release one, list them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from talktime import policy
from talktime.config import Settings
from talktime.errors import naming
from talktime.paging import split_page
from talktime.rating import price_number_rental
from talktime.service import cards
from talktime.service.common import balance_dict, charge_or_refuse, fmt, now_micros
from talktime.service.idempotency import StoredResponse, run_once
from talktime.store.writer import writing
from talktime.wallet import rentals

SMS_TYPES = policy.SMS_NUMBER_TYPES
"""Number types that can be SMS-enabled (in the SMS countries); toll-free and other cannot."""


def number_dict(number: rentals.PhoneNumber, currency: str) -> dict[str, Any]:
    """A number as API data."""
    return {
        "id": number.id,
        "e164": number.e164,
        "country": number.country,
        "type": number.number_type,
        "sms_enabled": number.sms_enabled,
        "voice_enabled": number.voice_enabled,
        "status": number.status,
        "monthly_price": fmt(number.monthly_price),
        "currency": currency,
        "rate": number.rate_ref,
        "created_at": number.created_at.isoformat(),
        "released_at": None if number.released_at is None else number.released_at.isoformat(),
    }


def add_number(
    engine: sa.Engine, settings: Settings, account_id: int, e164: str, key: str
) -> StoredResponse:
    """Rent ``e164``: its type and capabilities from classification, its price from the rate
    card, the first month charged at once (402 and nothing kept if not covered)."""

    def work(conn: sa.Connection) -> tuple[int, Any]:
        book = cards.charging_book(conn, settings)
        wallet_key = f"number:{key}"
        state = book.account(account_id, wallet_key)
        now = book.now
        policy.require_active_subscription(state.status)
        card = cards.pricing_card(conn, account_id, settings)
        with naming("e164"):  # an invalid number, or one the card has no monthly price for
            info = card.classify(e164)
            quote = price_number_rental(card, e164)
        rentals.require_free(conn, account_id, info.e164)  # before the charge can refuse for credit
        # ledger and response; a rental line names its number and that it is the first
        # month, as the embedded `rent_number`'s and the cycle's renewals' do
        lines = [
            {**d, "number": info.e164, "first_month": True} if d["kind"] == "number_rental" else d
            for d in (line.to_dict() for line in quote.lines)
        ]
        balance = state.balances(now)
        if quote.total > 0:
            # Charge before adding: a monthly-limit refusal commits its event (KeepWritesError),
            # and must not commit a number whose first month was never paid.
            charged = charge_or_refuse(
                book,
                account_id,
                quote.total,
                wallet_key,
                f"number:{info.e164}",
                lines,
                quote.currency,
            )
            balance = charged.balance
        number = rentals.add_number(
            conn,
            account_id,
            info.e164,
            country=info.country,
            number_type=info.type,
            monthly_price=quote.total,
            rate_ref=str(quote.lines[0].rate),
            now=now,
            sms_enabled=policy.sms_capable(info.country) and info.type in SMS_TYPES,
        )
        book.flush()
        return 201, {
            **number_dict(number, quote.currency),
            "charged": fmt(quote.total),
            "lines": lines,
            "balance": balance_dict(balance, quote.currency),
        }

    return run_once(engine, account_id, key, "number.add", {"e164": e164}, work)


def release_number(
    engine: sa.Engine, settings: Settings, account_id: int, number_id: int
) -> dict[str, Any]:
    """Give a number up (no rental from the next period on); 404 for another account's."""
    with writing(engine) as conn:
        number = rentals.release_number(conn, account_id, number_id, now=now_micros())
        currency = cards.card_for(conn, account_id, settings).currency
        return number_dict(number, currency)


def list_numbers(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    *,
    status: rentals.NumberStatus | None = None,
    cursor: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of the account's numbers, oldest first: ``numbers`` and ``next_cursor`` (the
    last id of a full page, to pass as ``cursor``; None on the last page)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        currency = cards.card_for(conn, account_id, settings).currency
        # one more than asked says whether another page follows
        found = rentals.list_numbers(conn, account_id, status, after=cursor, limit=limit + 1)
    page, next_cursor = split_page(found, limit, lambda n: n.id)
    return {"numbers": [number_dict(n, currency) for n in page], "next_cursor": next_cursor}
