"""Buying credit through the account's payment provider, and the auto-recharge setting."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from talktime import policy
from talktime.config import Settings
from talktime.service import users
from talktime.service.balance import balance, balance_in
from talktime.service.common import fmt, now_micros
from talktime.service.errors import InvalidRequestError
from talktime.service.idempotency import (
    StoredResponse,
    answer_held_key,
    fingerprint,
    hold_key,
    release_key,
    replay,
)
from talktime.store.wallet_tables import idempotency as key_records
from talktime.store.writer import writing
from talktime.wallet import Wallet, recharge
from talktime.wallet import idempotency as wallet_idempotency
from talktime.wallet.book import Book
from talktime.wallet.model import GrantResult
from talktime.wallet.payments import (
    ManualProvider,
    PaymentProvider,
    PaymentSetupError,
    minor_units,
    provider_from_settings,
)

PURCHASE = "credits.purchase"
"""The operation name of `POST /v1/credits` among the account's stored responses."""
PURCHASE_STARTED = "credits.started"
"""The operation of the record a purchase leaves once it was allowed, before it pays."""


def wallet_key(key: str) -> str:
    """The wallet's key for a purchase under the caller's ``key``: prefixed like the keys of
    every other request (`sms:`, `call:`, `number:`...), so a fresh key such as `sms:abc` is
    not taken for the record of the message sent under `abc` (it was a 409). The provider is
    still paid under `purchase_payment_key` of the caller's own key, as before."""
    return f"credits:{key}"


def _answer(conn: sa.Connection, result: GrantResult) -> StoredResponse:
    g = result.grant
    body = {
        "grant_id": g.id,
        "amount": fmt(g.original),
        "source": g.source,
        "transaction_id": result.transaction_id,
        "balance": balance_in(conn, g.account_id),
        "created_at": g.effective_at.isoformat(),
    }
    return StoredResponse(201, json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def started_key(key: str) -> str:
    """The wallet key of the record saying the purchase under ``key`` was allowed and went to
    the provider (its own prefix: no other request's wallet key starts with it)."""
    return f"credits-started:{key}"


def _started(engine: sa.Engine, account_id: int, key: str, digest: str) -> bool:
    """True when this very request (same key, amount and user) was allowed before and went to
    the provider: its payment may have been taken, so a retry must finish it."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        found = wallet_idempotency.lookup(conn, account_id, [started_key(key)])
    record = found.get(started_key(key))
    return record is not None and record[:2] == (PURCHASE_STARTED, digest)


def _start(engine: sa.Engine, account_id: int, key: str, digest: str) -> StoredResponse | None:
    """Record, before paying, that the request was allowed (committed on its own, so it
    survives a crash between the payment and the grant), and take the key. None to go on
    (also when a twin took the key at the same moment); the stored answer when a twin
    answered under the key meanwhile; 409 when another request took it meanwhile (its answer
    stored between our lookup and this)."""
    try:
        _mark_started(engine, account_id, key, digest)
    except sa.exc.IntegrityError:
        # a twin (the same request) took the key at the same moment and goes on, as does
        # this one: the wallet pays and grants once per key; an answer stored meanwhile is
        # replayed, another request's is 409
        return _stored(engine, account_id, key, digest)
    return None


def _mark_started(engine: sa.Engine, account_id: int, key: str, digest: str) -> None:
    with writing(engine) as conn:
        wallet_idempotency.mark(
            conn, account_id, started_key(key), PURCHASE_STARTED, digest, now_micros()
        )
        # the key is the purchase's from now on: a send or a call under it is refused (409)
        # while the payment is under way or after a provider error left it unfinished (until
        # 1 Dec another route took the key, and the retry of the purchase was then refused
        # for ever: the money taken never became credit)
        hold_key(conn, account_id, key, PURCHASE, digest)


def _forget_start(engine: sa.Engine, account_id: int, key: str) -> None:
    """Drop the start record of the purchase under ``key`` after the provider declined it: no
    money was taken, so the next attempt is a new payment and is checked again (subscription,
    permission) like any new request."""
    with writing(engine) as conn:
        conn.execute(
            sa.delete(key_records).where(
                key_records.c.account_id == account_id,
                key_records.c.key == started_key(key),
            )
        )
        release_key(conn, account_id, key)


def _stored(engine: sa.Engine, account_id: int, key: str, digest: str) -> StoredResponse | None:
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return replay(conn, account_id, key, PURCHASE, digest)


def _require_payable(
    provider: PaymentProvider, account_id: int, amount: int, currency: str
) -> None:
    """Refuse, before anything is written, a purchase no payment could take: the `manual`
    provider (409 automatic_payment_unavailable), or an amount that is not whole cents (422
    payment_setup_invalid naming `amount`, as the auto-recharge setting does). Both were
    refused by the provider, after the purchase's start record was written."""
    if isinstance(provider, ManualProvider):
        raise ManualProvider.refusal(str(account_id))
    try:
        minor_units(amount, currency)
    except PaymentSetupError as refusal:
        raise PaymentSetupError(refusal.detail, field="amount") from None


def purchase(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    amount: int,
    key: str,
    provider: PaymentProvider | None = None,
    *,
    user: str | None = None,
) -> StoredResponse:
    """Buy credit: the provider is paid first, the credit granted after (never twice per key).

    The answer is stored with the grant, so a replay of ``key`` returns it byte for byte (the
    balance as it was then); the same key with another amount or ``user`` is refused (409).
    A named ``user`` needs `billing.manage` (checked after the replay lookup, as for messages),
    and the subscription must be active. Both are checked once: a retry of a purchase that was
    allowed and went to the provider finishes it (the payment may have been taken before a
    crash) even if the subscription lapsed or the user lost the permission meanwhile.
    """
    digest = fingerprint(PURCHASE, {"amount": amount, "user": user})
    known = _stored(engine, account_id, key, digest)
    if known is not None:
        return known
    account = Wallet(engine).account(account_id)  # 404 before any payment is attempted
    provider = provider or provider_from_settings(settings)
    if not _started(engine, account_id, key, digest):
        # no card is charged for credit the account could not use (403 subscription_inactive)
        policy.require_active_subscription(account.status)
        users.require_permission_of(engine, account_id, user, "billing.manage")
        _require_payable(provider, account_id, amount, account.currency)
        answered = _start(engine, account_id, key, digest)
        if answered is not None:
            return answered
    answers: list[StoredResponse] = []

    def on_grant(book: Book, granted: GrantResult) -> None:
        answer = _answer(book.conn, granted)
        answer_held_key(book.conn, account_id, key, PURCHASE, digest, answer)
        answers.append(answer)

    try:
        result = recharge.purchase(
            engine,
            account_id,
            amount,
            wallet_key(key),
            provider,
            on_grant=on_grant,
            payment_key=recharge.purchase_payment_key(account_id, key),
        )
    except recharge.PaymentDeclinedError:
        _forget_start(engine, account_id, key)
        raise
    if answers:
        return answers[0]
    # The wallet replayed the grant: a concurrent twin stored the answer with it, or the key
    # was used before answers were stored with purchases (store one now, once).
    known = _stored(engine, account_id, key, digest)
    if known is not None:
        return known
    try:
        with writing(engine) as conn:
            answer = _answer(conn, result)
            answer_held_key(conn, account_id, key, PURCHASE, digest, answer)
    except sa.exc.IntegrityError:
        known = _stored(engine, account_id, key, digest)
        assert known is not None
        return known
    return StoredResponse(answer.status, answer.body, replayed=True)


def set_auto_recharge(
    engine: sa.Engine,
    account_id: int,
    *,
    enabled: bool,
    threshold: int | None,
    amount: int | None,
    settings: Settings,
) -> dict[str, Any]:
    """When paid credit falls under ``threshold``, buy ``amount`` more (one at a time).

    Turning it on needs both (422 `invalid_request` naming the one left out); with an
    ``amount`` no card payment can take (not whole cents) it is refused
    (`payment_setup_invalid`), as buying that amount is. Turning it off always works: a
    ``threshold`` or ``amount`` left out (None) keeps the stored one; with no amount stored
    nor given nothing is written (auto-recharge is off already).
    """
    Wallet(engine).account(account_id)
    if enabled:
        for name, value in (("threshold", threshold), ("amount", amount)):
            if value is None:
                raise InvalidRequestError(
                    f"Turning auto-recharge on needs `{name}`; send it.", field=name
                )
    # `configure` keeps the stored values left out, under the account's lock, and refuses an
    # amount a card cannot take
    with writing(engine) as conn:
        recharge.configure(
            conn,
            account_id,
            enabled=enabled,
            threshold=threshold,
            amount=amount,
            now=now_micros(),
        )
    return balance(engine, account_id, settings)


def set_payment_method(
    engine: sa.Engine,
    account_id: int,
    *,
    customer: str | None,
    payment_method: str | None,
    settings: Settings,
) -> dict[str, Any]:
    """Save the payment provider's customer and payment method (None clears one) that every
    purchase and recharge of the account charges; answers the balance, whose `auto_recharge`
    shows them."""
    Wallet(engine).account(account_id)
    with writing(engine) as conn:
        recharge.set_payment_method(
            conn, account_id, customer=customer, payment_method=payment_method, now=now_micros()
        )
    return balance(engine, account_id, settings)
