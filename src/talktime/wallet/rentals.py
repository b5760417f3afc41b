"""Phone-number rentals: the numbers an account holds, their monthly price and status.

The caller prices a number (rating) and passes the price in; the monthly cycle charges it and
suspends a number whose rental the credit does not cover. Works on an open connection.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import sqlalchemy as sa

from talktime import money
from talktime.errors import TalktimeError
from talktime.store.recharge_tables import phone_numbers
from talktime.store.tables import constant
from talktime.store.wallet_tables import accounts
from talktime.wallet import charges, idempotency, outbox
from talktime.wallet.book import Book
from talktime.wallet.errors import AccountNotFoundError, IdempotencyConflictError
from talktime.wallet.model import ChargeResult
from talktime.wallet.periods import from_micros, to_micros

NUMBER_SUSPENDED: Final = outbox.NUMBER_SUSPENDED
NumberStatus = Literal["active", "suspended", "released"]
_E164 = re.compile(r"\+[1-9][0-9]{1,14}\Z")


class NumberNotFoundError(TalktimeError):
    """No phone number with that id on that account."""

    code = "number_not_found"
    status = 404
    title = "Phone number not found"


class NumberInUseError(TalktimeError):
    """The number already belongs to an account and has not been released."""

    code = "number_in_use"
    status = 409
    title = "Phone number in use"


class InvalidNumberError(TalktimeError):
    """A number or rental that cannot be stored as written."""

    code = "invalid_number"
    status = 400
    title = "Invalid phone number"


@dataclass(frozen=True)
class PhoneNumber:
    """A rented number: its monthly price and the rate that priced it when it was added."""

    id: int
    account_id: int
    e164: str
    country: str
    number_type: str
    sms_enabled: bool
    voice_enabled: bool
    status: str
    monthly_price: int
    rate_ref: str
    created_at: datetime
    suspended_at: datetime | None
    released_at: datetime | None


def _number(row: Any) -> PhoneNumber:
    return PhoneNumber(
        id=row.id,
        account_id=row.account_id,
        e164=row.e164,
        country=row.country,
        number_type=row.number_type,
        sms_enabled=bool(row.sms_enabled),
        voice_enabled=bool(row.voice_enabled),
        status=row.status,
        monthly_price=row.monthly_price,
        rate_ref=row.rate_ref,
        created_at=from_micros(row.created_at),
        suspended_at=None if row.suspended_at is None else from_micros(row.suspended_at),
        released_at=None if row.released_at is None else from_micros(row.released_at),
    )


def require_free(conn: sa.Connection, account_id: int, e164: str) -> None:
    """Refuse a number some account holds (not released), saying whose it is and what to do
    (`NumberInUseError`): another account's cannot be released by this one."""
    row = conn.execute(
        sa.select(phone_numbers.c.id, phone_numbers.c.account_id, phone_numbers.c.status).where(
            phone_numbers.c.e164 == e164, phone_numbers.c.status != constant("released")
        )
    ).first()
    if row is None:
        return
    if row.account_id != account_id:
        raise NumberInUseError(
            f"{e164} is rented by another account; choose another number.", e164=e164
        )
    if row.status == "suspended":
        raise NumberInUseError(
            f"{e164} is already this account's number {row.id}, suspended (a monthly rental "
            "was not covered, or the subscription was canceled when a period began); release "
            "it and add it again to pay for it and use it.",
            e164=e164,
            number_id=row.id,
        )
    raise NumberInUseError(
        f"{e164} is already this account's number {row.id}; nothing to add.",
        e164=e164,
        number_id=row.id,
    )


def add_number(
    conn: sa.Connection,
    account_id: int,
    e164: str,
    *,
    country: str,
    number_type: str,
    monthly_price: int,
    rate_ref: str,
    now: int,
    sms_enabled: bool = False,
    voice_enabled: bool = True,
) -> PhoneNumber:
    """Record a number rented by ``account_id`` at ``monthly_price`` micro-units a month.

    The caller charges the first month (in the same transaction, if it wants both or neither);
    the monthly cycle charges each later month.
    """
    if not _E164.match(e164):
        raise InvalidNumberError(f"{e164!r} is not an E.164 number such as +14155550100")
    if isinstance(monthly_price, bool) or not isinstance(monthly_price, int) or monthly_price < 0:
        raise InvalidNumberError(
            f"the monthly price must be an int of micro-units, zero or more, not {monthly_price!r}"
        )
    if not rate_ref:
        raise InvalidNumberError("a rented number must name the rate that priced it (rate_ref)")
    if conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
        raise AccountNotFoundError(f"there is no account {account_id}", account_id=account_id)
    require_free(conn, account_id, e164)
    values = {
        "account_id": account_id,
        "e164": e164,
        "country": country.upper(),
        "number_type": number_type,
        "sms_enabled": sms_enabled,
        "voice_enabled": voice_enabled,
        "status": "active",
        "monthly_price": monthly_price,
        "rate_ref": rate_ref,
        "created_at": now,
    }
    key = conn.execute(sa.insert(phone_numbers).values(values)).inserted_primary_key
    assert key is not None
    return get_number(conn, account_id, int(key[0]))


def rent_number(
    book: Book,
    account_id: int,
    e164: str,
    key: str,
    *,
    country: str,
    number_type: str,
    monthly_price: int,
    rate_ref: str,
    sms_enabled: bool = False,
    voice_enabled: bool = True,
) -> tuple[PhoneNumber, ChargeResult | None]:
    """Add a number and charge its first month in the caller's transaction: both or neither.

    Idempotent by ``key``: a replay returns the number and the original charge. A free number
    (price 0) is added without a charge. Refusals (`insufficient_credit`, `number_in_use`...)
    raise, and the caller's transaction rolls back.
    """
    state = book.account(account_id)
    if monthly_price == 0:
        return _rent_free(
            book, state.id, e164, key, country, number_type, rate_ref, sms_enabled, voice_enabled
        )
    first = _first_month(e164, country, number_type, rate_ref, monthly_price)
    if idempotency.lookup(book.conn, state.id, [key]):
        replay = charges.charge(book, state.id, monthly_price, key, *first)
        # The number this key rented: added in the charge's transaction, at its time (not a
        # later rental of the same number, after a release, under another key).
        held = book.conn.execute(
            sa.select(phone_numbers.c.id)
            .where(
                phone_numbers.c.account_id == state.id,
                phone_numbers.c.e164 == e164,
                phone_numbers.c.created_at == to_micros(replay.created_at),
            )
            .order_by(phone_numbers.c.id.desc())
        ).first()
        if held is None:  # the key charged this number's month but did not rent it
            raise IdempotencyConflictError(
                f"key {key!r} was already used for a different request; use a new key",
                key=key,
            )
        return get_number(book.conn, state.id, held.id), replay
    number = add_number(
        book.conn,
        state.id,
        e164,
        country=country,
        number_type=number_type,
        monthly_price=monthly_price,
        rate_ref=rate_ref,
        now=book.now,
        sms_enabled=sms_enabled,
        voice_enabled=voice_enabled,
    )
    charge = charges.charge(book, state.id, monthly_price, key, *first)
    return number, charge


def _rent_free(
    book: Book,
    account_id: int,
    e164: str,
    key: str,
    country: str,
    number_type: str,
    rate_ref: str,
    sms_enabled: bool,
    voice_enabled: bool,
) -> tuple[PhoneNumber, None]:
    """`rent_number` of a number priced 0: no charge, so the key keeps the number's id."""
    request = {
        "e164": e164,
        "country": country,
        "number_type": number_type,
        "rate_ref": rate_ref,
        "sms_enabled": sms_enabled,
        "voice_enabled": voice_enabled,
    }
    digest = idempotency.fingerprint("rent_number", request)
    stored = book.replay(account_id, key, "rent_number", digest)
    if stored is not None:
        return get_number(book.conn, account_id, json.loads(stored)["number_id"]), None
    number = add_number(
        book.conn,
        account_id,
        e164,
        country=country,
        number_type=number_type,
        monthly_price=0,
        rate_ref=rate_ref,
        now=book.now,
        sms_enabled=sms_enabled,
        voice_enabled=voice_enabled,
    )
    book.remember(account_id, key, "rent_number", digest, json.dumps({"number_id": number.id}))
    return number, None


def _rental_line(
    e164: str, country: str, number_type: str, rate_ref: str, price: int
) -> dict[str, Any]:
    """One month's rental as a priced line, shaped as rating's (money as decimal strings)."""
    amount = money.format(price)
    return {
        "kind": "number_rental",
        "description": f"rental of {e164} ({country.upper()} {number_type})",
        "quantity": "1",
        "unit": "months",
        "unit_price": amount,
        "unrounded": amount,
        "amount": amount,
        "rounding": "none",
        "rate": rate_ref,
        "number": e164,
    }


def renewal_line(number: PhoneNumber, period_start: int) -> dict[str, Any]:
    """The priced line of one month's rental of ``number`` from ``period_start``, shaped as
    rating's lines are (money as decimal strings, as the ledger shows every other line)."""
    line = _rental_line(
        number.e164, number.country, number.number_type, number.rate_ref, number.monthly_price
    )
    return {**line, "period_start": from_micros(period_start).isoformat()}


def _first_month(
    e164: str, country: str, number_type: str, rate_ref: str, price: int
) -> tuple[str, list[dict[str, Any]]]:
    """The reference and priced line of `rent_number`'s first month (decimal strings, as the
    renewals' and the API's lines)."""
    line = _rental_line(e164, country, number_type, rate_ref, price)
    return f"number:{e164}", [{**line, "first_month": True}]


def get_number(conn: sa.Connection, account_id: int, number_id: int) -> PhoneNumber:
    """The number ``number_id`` of ``account_id`` (`NumberNotFoundError` if not there)."""
    row = conn.execute(
        sa.select(phone_numbers).where(
            phone_numbers.c.id == number_id, phone_numbers.c.account_id == account_id
        )
    ).first()
    if row is None:
        raise NumberNotFoundError(
            f"account {account_id} has no phone number {number_id}",
            account_id=account_id,
            number_id=number_id,
        )
    return _number(row)


def list_numbers(
    conn: sa.Connection,
    account_id: int,
    status: NumberStatus | None = None,
    *,
    after: int | None = None,
    limit: int | None = None,
) -> list[PhoneNumber]:
    """The account's numbers (optionally only those in ``status``), oldest first; ``after``
    and ``limit`` give one page (ids above ``after``, at most ``limit`` of them)."""
    query = sa.select(phone_numbers).where(phone_numbers.c.account_id == account_id)
    if status is not None:
        query = query.where(phone_numbers.c.status == status)
    if after is not None:
        query = query.where(phone_numbers.c.id > after)
    query = query.order_by(phone_numbers.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [_number(r) for r in conn.execute(query)]


def release_number(
    conn: sa.Connection, account_id: int, number_id: int, *, now: int
) -> PhoneNumber:
    """Give the number up: no more rentals from the next period on. Releasing twice is a no-op."""
    number = get_number(conn, account_id, number_id)
    if number.status == "released":
        return number
    conn.execute(
        sa.update(phone_numbers)
        .where(phone_numbers.c.id == number_id)
        .values(status="released", released_at=now)
    )
    return get_number(conn, account_id, number_id)


def suspend_number(conn: sa.Connection, account_id: int, number_id: int, *, now: int) -> bool:
    """Mark an active number suspended; True if it was active (the caller queues the event)."""
    done = conn.execute(
        sa.update(phone_numbers)
        .where(
            phone_numbers.c.id == number_id,
            phone_numbers.c.account_id == account_id,
            phone_numbers.c.status == "active",
        )
        .values(status="suspended", suspended_at=now)
    )
    return done.rowcount == 1


def stop_late_rent(conn: sa.Connection, account_id: int, number_id: int, *, now: int) -> None:
    """Record on a released number that a late period's rent was not covered (its
    `suspended_at`; it stays released), so no later period charges it: had the cycle run on
    time it would have been suspended then."""
    conn.execute(
        sa.update(phone_numbers)
        .where(
            phone_numbers.c.id == number_id,
            phone_numbers.c.account_id == account_id,
            phone_numbers.c.status == "released",
            phone_numbers.c.suspended_at.is_(None),
        )
        .values(suspended_at=now)
    )


def reactivate_number(conn: sa.Connection, account_id: int, number_id: int) -> PhoneNumber:
    """Make a suspended number active again (the caller charges the month it owes first)."""
    number = get_number(conn, account_id, number_id)
    if number.status == "released":
        raise InvalidNumberError(
            f"{number.e164} was released and cannot be reactivated; rent it again",
            number_id=number_id,
        )
    conn.execute(
        sa.update(phone_numbers)
        .where(phone_numbers.c.id == number_id)
        .values(status="active", suspended_at=None)
    )
    return get_number(conn, account_id, number_id)


def rentals_due(conn: sa.Connection, account_id: int, period_start: int) -> list[PhoneNumber]:
    """Numbers the account held when the period started: added before ``period_start`` and
    active, or released after it started without ever being suspended (the cycle ran late:
    the number still owes that period's rent, as it would had the cycle run on time)."""
    query = (
        sa.select(phone_numbers)
        .where(
            phone_numbers.c.account_id == account_id,
            phone_numbers.c.created_at < period_start,
            sa.or_(
                phone_numbers.c.status == "active",
                sa.and_(
                    phone_numbers.c.status == "released",
                    phone_numbers.c.released_at > period_start,
                    phone_numbers.c.suspended_at.is_(None),
                ),
            ),
        )
        .order_by(phone_numbers.c.id)
    )
    return [_number(r) for r in conn.execute(query)]
