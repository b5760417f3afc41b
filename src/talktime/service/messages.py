"""SMS use cases: authorize-and-charge an outgoing message, record an incoming one.

One transaction each: policy (subscription, user permission, MMS, sending number, countries),
then rating (segments and priced lines), then the wallet charge, the message row and the stored
response for the Idempotency-Key. A refusal changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from talktime import policy, sms
from talktime.config import Settings
from talktime.errors import TalktimeError, naming
from talktime.rating import Direction, Quote, RateCard, price_sms
from talktime.service import cards
from talktime.service import users as user_service
from talktime.service.common import (
    balance_dict,
    charge_or_refuse,
    fmt,
    iso,
    new_id,
)
from talktime.service.errors import InvalidRequestError
from talktime.service.groupcommit import GroupCommitter, Outcome, committer_for
from talktime.service.idempotency import (
    GroupedUnit,
    StoredResponse,
    fingerprint,
    run_grouped,
    run_grouped_async,
    run_once,
    run_once_async,
    run_together,
)
from talktime.sms import smart
from talktime.store.api_tables import account_cards, messages, users
from talktime.store.rawsql import PendingRows, RawStatement
from talktime.store.recharge_tables import phone_numbers
from talktime.store.tables import constant
from talktime.store.wallet_tables import accounts
from talktime.store.writer import writer_turn
from talktime.wallet.book import Book
from talktime.wallet.model import ChargeResult


class TextTooLongError(TalktimeError):
    code = "text_too_long"
    status = 422
    title = "Text too long"


@dataclass(frozen=True)
class SendSms:
    """An outgoing message to authorize: who sends it, from which number, to whom, what."""

    from_: str
    to: str
    text: str
    user: str
    media: tuple[str, ...] = ()
    smart_encoding: bool = False

    def fingerprint_data(self) -> dict[str, Any]:
        return {
            "from": self.from_,
            "to": self.to,
            "text": self.text,
            "user": self.user,
            "media": list(self.media),
            "smart_encoding": self.smart_encoding,
        }


@dataclass(frozen=True)
class InboundSms:
    """A message received on one of the account's numbers."""

    from_: str
    to: str
    text: str
    media: tuple[str, ...] = field(default=())

    def fingerprint_data(self) -> dict[str, Any]:
        return {"from": self.from_, "to": self.to, "text": self.text, "media": list(self.media)}


_NUMBER_AS_POLICY_SEES_IT = (
    phone_numbers.c.account_id,
    phone_numbers.c.country,
    phone_numbers.c.status,
    phone_numbers.c.sms_enabled,
)
"""The columns `_sending_number` reads."""


def account_number(conn: sa.Connection, e164: str) -> policy.SendingNumber | None:
    """The held (not released) number ``e164`` of any account, as policy sees it."""
    row = conn.execute(
        sa.select(*_NUMBER_AS_POLICY_SEES_IT)
        .where(phone_numbers.c.e164 == e164, phone_numbers.c.status != constant("released"))
        .limit(1)
    ).first()
    return _sending_number(e164, row.account_id if row is not None else None, row)


def own_number(
    conn: sa.Connection, e164: str, account_id: int, held: policy.SendingNumber | None
) -> policy.SendingNumber | None:
    """``held`` (the number as any account holds it now) when it is the account's; else the
    account's own released number ``e164``, if it had one, so that the refusal says it was
    released rather than that it was never the account's. Reads only on that refusal path."""
    if held is not None and held.account_id == account_id:
        return held
    row = conn.execute(
        sa.select(*_NUMBER_AS_POLICY_SEES_IT)
        .where(
            phone_numbers.c.e164 == e164,
            phone_numbers.c.account_id == account_id,
            phone_numbers.c.status == constant("released"),
        )
        .order_by(phone_numbers.c.id.desc())
        .limit(1)
    ).first()
    return held if row is None else _sending_number(e164, row.account_id, row)


def _sending_number(e164: str, holder: Any, row: Any) -> policy.SendingNumber | None:
    """Number ``e164`` as policy sees it from a row with its country, status and sms_enabled;
    None when no account holds it (``holder`` None)."""
    if holder is None:
        return None
    return policy.SendingNumber(
        e164=e164,
        account_id=int(holder),
        country=row.country,
        status=row.status,
        sms_enabled=bool(row.sms_enabled),
    )


def _send_context_statement() -> RawStatement:
    """One SELECT for what a send needs besides the account: the sending number (outer-joined,
    so a missing number is a row of NULLs), the user's role and restrictions, the card, and
    the end of the account's period (to tell whether a period was opened since: see
    `_send_work`)."""
    wanted = sa.select(sa.bindparam("e164", type_=sa.String(20)).label("e164")).subquery()
    account: sa.BindParameter[Any] = sa.bindparam("account")
    user = sa.and_(users.c.id == sa.bindparam("user"), users.c.account_id == account)
    number = sa.and_(
        phone_numbers.c.e164 == wanted.c.e164, phone_numbers.c.status != constant("released")
    )
    return RawStatement(
        sa.select(
            phone_numbers.c.account_id.label("number_account"),
            phone_numbers.c.country,
            phone_numbers.c.status,
            phone_numbers.c.sms_enabled,
            sa.select(users.c.role).where(user).scalar_subquery().label("role"),
            sa.select(users.c.restrictions).where(user).scalar_subquery().label("restrictions"),
            sa.select(account_cards.c.card)
            .where(account_cards.c.account_id == account)
            .scalar_subquery()
            .label("card"),
            sa.select(accounts.c.currency)
            .where(accounts.c.id == account)
            .scalar_subquery()
            .label("currency"),
            sa.select(accounts.c.period_end)
            .where(accounts.c.id == account)
            .scalar_subquery()
            .label("period_end"),
        )
        .select_from(wanted.outerjoin(phone_numbers, number))
        .limit(1)
    )


_SEND_CONTEXT = _send_context_statement()
_MESSAGE_KEYS = [c.key for c in messages.c]
_INSERT_MESSAGE = RawStatement(messages.insert(), column_keys=_MESSAGE_KEYS)


def _check_text(text: str, settings: Settings) -> None:
    if len(text) > settings.sms_max_text_chars:
        raise TextTooLongError(
            f"The text has {len(text)} characters; the limit is {settings.sms_max_text_chars}.",
            field="text",
            limit=settings.sms_max_text_chars,
        )
    if not text:
        raise InvalidRequestError("The text is empty; send at least one character.", field="text")
    with naming("text"):
        sms.require_valid_text(text)


def _check_smart_text(text: str, smart_encoding: bool) -> None:
    if smart_encoding and not smart.replace(text)[0]:
        raise InvalidRequestError(
            "The text holds only invisible characters, which smart encoding removes, so the "
            "message would be empty; send at least one visible character.",
            field="text",
        )


def check_outgoing_text(text: str, settings: Settings, *, smart_encoding: bool = False) -> None:
    """Refuse an outgoing text that every send refuses, in the send's order and with its codes:
    too long (`text_too_long`), empty, a lone surrogate (`invalid_text`), then only invisible
    characters that smart encoding removes."""
    _check_text(text, settings)
    _check_smart_text(text, smart_encoding)


def quote_sms(
    card: RateCard,
    from_: str,
    to: str,
    text: str,
    direction: Direction,
    settings: Settings,
    *,
    smart_encoding: bool = False,
) -> Quote:
    """Price one SMS as a send would, refusing what a send always refuses whoever sends it:
    a text that is empty, too long or not text, an account-side number (``from_`` outbound,
    ``to`` inbound) that no account could have SMS-enabled, and a route between countries SMS
    never takes. (The rest of the number's checks need an account: a quote has none.) Each
    refusal names the field at fault, as a send's does."""
    check_outgoing_text(text, settings, smart_encoding=smart_encoding)
    with naming("from"):
        sender = card.classify(from_)
    with naming("to"):
        recipient = card.classify(to)
    own, own_field = (recipient, "to") if direction == "inbound" else (sender, "from")
    with naming(own_field):
        policy.require_sms_capable(own.e164, own.country, own.type)
    with naming("to"):
        policy.require_sms_route(sender.country, recipient.country, inbound=direction == "inbound")
    with naming(_party_field(direction)):
        return price_sms(card, from_, to, text, direction, smart_encoding)


def _party_field(direction: str) -> str:
    """The field of the other party, whose country prices an SMS: `to` of an outbound message,
    `from` of an inbound one (an unpriced country is refused naming it)."""
    return "from" if direction == "inbound" else "to"


def _body(
    message_id: str,
    direction: str,
    req: SendSms | InboundSms,
    segmentation: sms.Segmentation,
    quote: Quote,
    lines: list[dict[str, Any]],
    card: RateCard,
    result: Any,
    now: int,
    user: str | None,
    balance: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "direction": direction,
        "from": req.from_,
        "to": req.to,
        "user": user,
        "status": "accepted" if direction == "outbound" else "received",
        "encoding": segmentation.encoding,
        "segments": segmentation.segments,
        "amount": fmt(quote.total),
        "currency": quote.currency,
        "from_free": fmt(result.from_free if result else 0),
        "from_paid": fmt(result.from_paid if result else 0),
        "lines": lines,
        "rate_card": card.ref,
        "balance": balance,
        "created_at": iso(now),
    }


def _message_row(
    message_id: str,
    account_id: int,
    user: str | None,
    direction: str,
    req: SendSms | InboundSms,
    segmentation: sms.Segmentation,
    quote: Quote,
    lines: list[dict[str, Any]],
    now: int,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "account_id": account_id,
        "user_id": user,
        "from_number": req.from_,
        "to_number": req.to,
        "direction": direction,
        "encoding": segmentation.encoding,
        "segments": segmentation.segments,
        "amount": quote.total,
        "currency": quote.currency,
        "lines": json.dumps(lines),
        "status": "accepted" if direction == "outbound" else "received",
        "created_at": now,
    }


def _charge_message(
    book: Book, account_id: int, quote: Quote, wallet_key: str
) -> tuple[str, list[dict[str, Any]], ChargeResult | None]:
    """A new message id, the quote's priced lines (for the ledger, the message row and the
    response) and its charge under ``wallet_key`` (None when the message is free)."""
    message_id = new_id("msg")
    lines = [line.to_dict() for line in quote.lines]
    result = None
    if quote.total > 0:
        result = charge_or_refuse(
            book, account_id, quote.total, wallet_key, message_id, lines, quote.currency
        )
    return message_id, lines, result


def _context_params(account_id: int, req: SendSms) -> dict[str, Any]:
    return {"e164": req.from_, "user": req.user, "account": account_id}


def _send(
    conn: sa.Connection,
    book: Book,
    settings: Settings,
    account_id: int,
    req: SendSms,
    key: str,
    context: Any,
    rows: list[dict[str, Any]],
    card_of: Callable[[str | None], RateCard] | None = None,
) -> tuple[int, Any]:
    """One send inside ``book`` (its account already locked there): policy, rating and the
    charge; the message row is queued on ``rows``. Every refusal comes before the book
    changes, except a monthly-limit refusal, which keeps its event (`KeepWritesError`).
    ``card_of`` gives the version in force of a card name (default: `cards.card_named`)."""
    wallet_key = f"sms:{key}"
    state = book.account(account_id, wallet_key)
    now = book.now
    if context.period_end != state.period_end:
        # a period was opened since the context was read (by this request's catch-up, or
        # on PostgreSQL by a transaction the lock waited for): its rents may have
        # suspended the sending number, so read the context again
        context = _SEND_CONTEXT.rows(conn, _context_params(account_id, req))[0]
    policy.require_active_subscription(state.status)
    actor = user_service.actor_of(req.user, context.role, context.restrictions)
    policy.require_permission(actor, "sms.send")
    with naming("media"):
        policy.refuse_media(req.media)
    _check_text(req.text, settings)
    _check_smart_text(req.text, req.smart_encoding)
    number = _sending_number(req.from_, context.number_account, context)
    number = own_number(conn, req.from_, account_id, number)
    with naming("from"):
        policy.require_sending_number(number, req.from_, account_id)
    assert number is not None
    card = card_of(context.card) if card_of else cards.card_named(context.card, settings)
    cards.require_currency(card, context.currency, account_id, cards.PRICING_ADVICE)
    with naming("to"):
        policy.require_sms_route(number.country, card.classify(req.to).country)
    segmentation = sms.segment(req.text, smart_encoding=req.smart_encoding)
    with naming("to"):
        quote = price_sms(
            card,
            req.from_,
            req.to,
            req.text,
            "outbound",
            req.smart_encoding,
            segmentation=segmentation,
        )
    message_id, lines, result = _charge_message(book, account_id, quote, wallet_key)
    rows.append(
        _message_row(
            message_id, account_id, req.user, "outbound", req, segmentation, quote, lines, now
        )
    )
    balance = balance_dict(result.balance if result else state.balances(now), quote.currency)
    body = _body(
        message_id,
        "outbound",
        req,
        segmentation,
        quote,
        lines,
        card,
        result,
        now,
        req.user,
        balance,
    )
    return 201, body


def _send_work(
    settings: Settings, account_id: int, req: SendSms, key: str
) -> Callable[[sa.Connection], tuple[int, Any]]:
    """The unit of work of one send-SMS request (policy, rating, charge, message row)."""

    def work(conn: sa.Connection) -> tuple[int, Any]:
        # user, sending number and card in one query, sent before the account is locked;
        # on PostgreSQL its result comes back in the lock's round trip
        pending_context = _SEND_CONTEXT.start(conn, _context_params(account_id, req))
        book = cards.charging_book(conn, settings)
        # locks the account for this transaction and reads the wallet key's record with it
        book.account(account_id, f"sms:{key}")
        context = pending_context.rows()[0]
        rows: list[dict[str, Any]] = []
        status, body = _send(conn, book, settings, account_id, req, key, context, rows)
        book.flush()
        _INSERT_MESSAGE.execute(conn, rows[0])
        return status, body

    return work


class _OneByOneError(Exception):
    """A pass together met what only a send alone handles: an account whose period ended
    (each send then opens the period inside its own savepoint), or sends of two apps."""


def _no_catch_up(*_: Any) -> None:
    raise _OneByOneError


def _start_sends(
    conn: sa.Connection, units: list[GroupedUnit]
) -> tuple[Callable[[GroupedUnit], tuple[int, Any]], Callable[[], None]]:
    """Begin a pass over many sends (`idempotency.run_together`): their contexts sent, then
    every account they charge locked and loaded at once with the wallet keys' records, in one
    `Book`. Each send then runs in memory; the book, the message rows and the responses are
    written once for the whole pass."""
    settings: Settings = units[0].payload[0]
    if any(unit.payload[0] is not settings for unit in units):
        raise _OneByOneError  # one app's sends share one settings object
    contexts: dict[tuple[str, str, int], PendingRows] = {}
    for unit in units:
        req: SendSms = unit.payload[1]
        found = (req.from_, req.user, unit.account_id)
        if found not in contexts:
            contexts[found] = _SEND_CONTEXT.start(conn, _context_params(unit.account_id, req))
    book = cards.charging_book(conn, settings)
    book.catch_up = _no_catch_up
    book.load([(unit.account_id, f"sms:{unit.key}") for unit in units])
    read: dict[tuple[str, str, int], Any] = {}
    rows: list[dict[str, Any]] = []
    in_force: dict[str | None, RateCard] = {}

    def card_of(name: str | None) -> RateCard:
        """The version in force of a card, looked up once a pass (the pass is one instant)."""
        card = in_force.get(name)
        if card is None:
            card = in_force[name] = cards.card_named(name, settings)
        return card

    def one(unit: GroupedUnit) -> tuple[int, Any]:
        req: SendSms = unit.payload[1]
        found = (req.from_, req.user, unit.account_id)
        if found not in read:
            read[found] = contexts[found].rows()[0]
        context = read[found]
        return _send(conn, book, settings, unit.account_id, req, unit.key, context, rows, card_of)

    def write() -> None:
        for pending in contexts.values():  # sends that replayed never read theirs
            pending.finish()
        book.flush()
        if rows:
            _INSERT_MESSAGE.executemany_rows(
                conn, [tuple(r[k] for k in _MESSAGE_KEYS) for r in rows]
            )

    return one, write


def _send_together(conn: sa.Connection, units: list[Any]) -> list[Outcome]:
    """The writer's pass over a batch of sends (see `groupcommit`)."""
    return run_together(conn, units, _start_sends)


def _committer(engine: sa.Engine, settings: Settings) -> GroupCommitter | None:
    return committer_for(
        engine, settings.group_commit, settings.group_commit_window_ms, writer_turn
    )


def send_unit(settings: Settings, account_id: int, req: SendSms, key: str) -> GroupedUnit:
    """A send-SMS request as the group committer's unit of work: alone in its savepoint, or in
    one pass with the other sends of its batch."""
    work = _send_work(settings, account_id, req, key)
    digest = fingerprint("sms.send", req.fingerprint_data())
    return GroupedUnit(account_id, key, "sms.send", digest, work, _send_together, (settings, req))


def send_sms(
    engine: sa.Engine, settings: Settings, account_id: int, req: SendSms, key: str
) -> StoredResponse:
    """Authorize an outgoing SMS: refuse it, or price and charge it all or nothing."""
    committer = _committer(engine, settings)
    if committer is not None:
        return run_grouped(committer, send_unit(settings, account_id, req, key))
    work = _send_work(settings, account_id, req, key)
    return run_once(engine, account_id, key, "sms.send", req.fingerprint_data(), work)


async def send_sms_async(
    engine: sa.Engine, settings: Settings, account_id: int, req: SendSms, key: str
) -> StoredResponse:
    """`send_sms` for a coroutine: awaits the group commit without holding a thread (with
    group commit off, the request's own transaction runs in the thread pool)."""
    committer = _committer(engine, settings)
    if committer is not None:
        return await run_grouped_async(committer, send_unit(settings, account_id, req, key))
    work = _send_work(settings, account_id, req, key)
    data = req.fingerprint_data()
    return await run_once_async(engine, account_id, key, "sms.send", data, work)


def record_inbound(
    engine: sa.Engine, settings: Settings, account_id: int, req: InboundSms, key: str
) -> StoredResponse:
    """Record a message received on one of the account's numbers; charge it if the card
    prices inbound messages (the default card does not)."""

    def work(conn: sa.Connection) -> tuple[int, Any]:
        book = cards.charging_book(conn, settings)
        wallet_key = f"sms-in:{key}"
        state = book.account(account_id, wallet_key)
        now = book.now
        policy.require_active_subscription(state.status)
        with naming("media"):
            policy.refuse_media(req.media, inbound=True)
        _check_text(req.text, settings)
        number = own_number(conn, req.to, account_id, account_number(conn, req.to))
        with naming("to"):
            policy.require_receiving_sms_number(number, req.to, account_id)
        assert number is not None
        card = cards.pricing_card(conn, account_id, settings)
        with naming("from"):
            sender = card.classify(req.from_)
        with naming("to"):
            policy.require_sms_route(sender.country, number.country, inbound=True)
        segmentation = sms.segment(req.text)
        with naming("from"):
            quote = price_sms(
                card, req.from_, req.to, req.text, "inbound", segmentation=segmentation
            )
        message_id, lines, result = _charge_message(book, account_id, quote, wallet_key)
        book.flush()
        _INSERT_MESSAGE.execute(
            conn,
            _message_row(
                message_id, account_id, None, "inbound", req, segmentation, quote, lines, now
            ),
        )
        balance = balance_dict(result.balance if result else state.balances(now), quote.currency)
        body = _body(
            message_id, "inbound", req, segmentation, quote, lines, card, result, now, None, balance
        )
        return 201, body

    return run_once(engine, account_id, key, "sms.inbound", req.fingerprint_data(), work)
