"""Operator use cases: create accounts (plans synced from the rate card), change plan and
subscription status, grant credit by hand, assign rate cards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from talktime.config import Settings
from talktime.rating import RateCard, load_card
from talktime.service import cards
from talktime.service.common import fmt, iso, now_micros
from talktime.service.errors import InvalidRequestError, RequestConflictError
from talktime.service.idempotency import StoredResponse
from talktime.wallet import Wallet, accounts, cycle, grants
from talktime.wallet.book import Book
from talktime.wallet.errors import IdempotencyConflictError, PlanNotFoundError
from talktime.wallet.errors import InvalidRequestError as WalletInvalidRequestError
from talktime.wallet.idempotency import NO_ACCOUNT, fingerprint, lookup, replay
from talktime.wallet.model import Account, Balances
from talktime.wallet.periods import to_micros


def sync_plans(conn: sa.Connection, card_name: str, settings: Settings) -> RateCard:
    """Copy the plans (monthly free credit) of the card in force into the plans table, in the
    caller's transaction (in name order, so concurrent syncs lock the rows in one order);
    returns that card."""
    card = load_card(card_name, directory=settings.rate_cards_dir)
    now = now_micros()
    for plan, free in sorted(card.plans.items()):
        accounts.upsert_plan(conn, plan, free, now)
    return card


def account_dict(
    conn: sa.Connection, account: Account, balance: Balances, settings: Settings
) -> dict[str, Any]:
    """An account as API data."""
    return {
        "id": account.id,
        "name": account.name,
        "plan": account.plan,
        "status": account.status,
        "currency": account.currency,
        "rate_card": cards.card_name(conn, account.id, settings),
        "monthly_limit": None if account.monthly_limit is None else fmt(account.monthly_limit),
        "period_start": account.period_start.isoformat(),
        "period_end": account.period_end.isoformat(),
        "created_at": account.created_at.isoformat(),
        "balance": {
            "currency": account.currency,
            "free": fmt(balance.free),
            "paid": fmt(balance.paid),
            "held": fmt(balance.held),
            "available": fmt(balance.available),
        },
    }


@contextmanager
def _plan_on(card: RateCard, plan: str) -> Iterator[None]:
    """An unknown plan is refused naming the plans of the card that prices the account (the
    wallet's sentence tells an embedder to add the plan, which the API and CLI cannot do)."""
    try:
        yield
    except PlanNotFoundError:
        known = ", ".join(repr(p) for p in sorted(card.plans))
        fix = f"choose one of {known}" if known else "import a version with a [plans] table"
        raise PlanNotFoundError(
            f"rate card {card.name!r} has no plan {plan!r}; {fix}", plan=plan, card=card.name
        ) from None


CREATE_ACCOUNT = "admin.create_account"
"""The operation name of `POST /v1/admin/accounts` among the stored answers (no account yet)."""


@contextmanager
def _named(key: str) -> Iterator[None]:
    """A conflict on a key derived from the caller's ``key`` names the key the caller sent."""
    try:
        yield
    except IdempotencyConflictError:
        raise RequestConflictError(
            f"Idempotency-Key {key!r} was already used for a different request; "
            "use a new key for a new request.",
            idempotency_key=key,
        ) from None


def create_account(
    engine: sa.Engine,
    settings: Settings,
    name: str,
    plan: str,
    key: str,
    *,
    credit: int = 0,
    rate_card: str | None = None,
    monthly_limit: int | None = None,
) -> StoredResponse:
    """Create an account on ``plan`` (its first free credit issued) with optional purchased
    ``credit``, priced with ``rate_card`` (default: the configured card); one transaction.

    The answer is stored with the account under ``key``: a replay returns it byte for byte,
    and the same key with any other field (credit and rate card included) is refused (409).
    """
    request = {
        "name": name,
        "plan": plan,
        "credit": credit,
        "rate_card": rate_card,
        "monthly_limit": monthly_limit,
    }
    with _named(key):
        try:
            return _create_account(engine, settings, key, request)
        except sa.exc.IntegrityError:
            # A concurrent request with the same key committed first (its idempotency record
            # collided with ours): this transaction rolled back, and a second run replays it.
            return _create_account(engine, settings, key, request)


def _create_account(
    engine: sa.Engine, settings: Settings, key: str, request: dict[str, Any]
) -> StoredResponse:
    answer_key, digest = f"answer:{key}", fingerprint(CREATE_ACCOUNT, request)
    with engine.begin() as conn:
        book = Book(conn, now_micros())
        stored = book.replay(NO_ACCOUNT, answer_key, CREATE_ACCOUNT, digest)
        if stored is not None:
            return StoredResponse(201, stored, replayed=True)
        # the first free credit is the plan's on this account's card: synced in the same
        # transaction, so a concurrent creation on another card cannot change it in between
        # billed in the currency of the card that prices it
        named = request["rate_card"]  # '' names no card: refused, never the default card
        card = sync_plans(conn, settings.rate_card if named is None else named, settings)
        with _plan_on(card, request["plan"]):
            created = accounts.create(
                book,
                request["name"],
                request["plan"],
                key,
                currency=card.currency,
                monthly_limit=request["monthly_limit"],
            )
        account_id = created.account.id
        balance = created.balance
        credit, rate_card = request["credit"], request["rate_card"]
        if credit > 0:
            granted = grants.issue(
                book, account_id, "purchased", credit, f"{key}:credit", source="bootstrap"
            )
            balance = granted.balance
        book.flush()
        if rate_card is not None and not created.replayed:
            cards.assign(conn, account_id, rate_card, settings)
        body = json.dumps(
            account_dict(conn, created.account, balance, settings),
            separators=(",", ":"),
            ensure_ascii=False,
        )
        book.remember(NO_ACCOUNT, answer_key, CREATE_ACCOUNT, digest, body)
        book.flush()
        return StoredResponse(201, body, replayed=created.replayed)


def get_account(engine: sa.Engine, settings: Settings, account_id: int) -> dict[str, Any]:
    """An account with its balances now."""
    wallet = Wallet(engine)
    account = wallet.account(account_id)
    b = wallet.balance(account_id)
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return account_dict(conn, account, Balances(b.free, b.paid, b.held, b.available), settings)


UPDATE_ACCOUNT = "admin.update_account"
"""The operation name of `PATCH /v1/admin/accounts/{id}` among the account's stored answers."""


def update_account(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    key: str,
    *,
    plan: str | None = None,
    status: str | None = None,
    rate_card: str | None = None,
) -> StoredResponse:
    """Change an account's plan, subscription status or rate card, in one transaction.

    The card is assigned first, so a plan chosen and free credit due in the same request come
    from the new card. The answer is stored with the change under ``key`` (as `{key}:answer`
    in the account's scope): a replay returns it byte for byte, and the same key with any other
    change (a rate card or plan added to a status change) is refused (409) instead of applied.
    """
    request = {"plan": plan, "status": status, "rate_card": rate_card}
    answer_key, digest = f"{key}:answer", fingerprint(UPDATE_ACCOUNT, request)
    with _named(key), engine.begin() as conn:
        card = None
        if plan is not None:  # the plans rows before the account's, as on creation
            name = rate_card or cards.card_name(conn, account_id, settings)
            card = sync_plans(conn, name, settings)
        now = now_micros()
        # periods begun since the cycle last ran open with the plan, status and card they
        # began with: a change made now applies from the next period
        cycle.catch_up(conn, account_id, now, cards.plan_credit(settings))
        book = Book(conn, now)
        book.account(account_id)
        stored = book.replay(account_id, answer_key, UPDATE_ACCOUNT, digest)
        if stored is not None:
            return StoredResponse(200, stored, replayed=True)
        # the same key on a grant of this account is a different request (409)
        book.replay(account_id, grant_key(key), UPDATE_ACCOUNT, digest)
        if rate_card is not None:
            cards.assign(conn, account_id, rate_card, settings)
        if plan is not None and card is not None:
            with _plan_on(card, plan):
                accounts.update(book, account_id, "set_plan", {"plan": plan}, f"{key}:plan")
        if status is not None:
            accounts.update(
                book,
                account_id,
                "set_status",
                {"status": status},
                f"{key}:status",
                plan_credit=cards.plan_credit(settings),
            )
        book.flush()
        account = accounts.get_account(conn, account_id)
        b = accounts.read_balance(conn, account_id, book.now)
        body = json.dumps(
            account_dict(conn, account, Balances(b.free, b.paid, b.held, b.available), settings),
            separators=(",", ":"),
            ensure_ascii=False,
        )
        book.remember(account_id, answer_key, UPDATE_ACCOUNT, digest, body)
        book.flush()
        return StoredResponse(200, body)


GRANT_CREDIT = "admin.grant"
"""The operation an admin grant is known by when its key is found on another request."""


def grant_key(key: str) -> str:
    """The wallet key of an admin grant made under the caller's ``key``."""
    return f"admin-grant:{key}"


def grant_credit(
    engine: sa.Engine,
    account_id: int,
    kind: str,
    amount: int,
    key: str,
    *,
    expires_at: datetime | None = None,
    source: str | None = None,
) -> StoredResponse:
    """Grant credit by hand (promotional, purchased, refund), idempotent by key: a replay
    answers the original grant and balances, marked replayed. An ``expires_at`` already past
    is refused (422), unless ``key`` granted this very request while it was still ahead."""
    wallet_key = grant_key(key)
    with _named(key), Wallet(engine) as wallet:  # gives its connection back to the pool
        with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            # the same key on a change of this account is a different request (409)
            answer_key = f"{key}:answer"
            record = lookup(conn, account_id, [answer_key]).get(answer_key)
        replay(record, answer_key, GRANT_CREDIT, "")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            with wallet.book() as book:  # rolled back unless it only replays
                try:
                    result = grants.issue(
                        book,
                        account_id,
                        kind,
                        amount,
                        wallet_key,
                        expires_at=expires_at,
                        source=source,
                    )
                except WalletInvalidRequestError:  # not a replay: the grant itself is refused
                    result = None
                if result is None or not result.replayed:
                    refusal = "expires_at must be in the future."
                    raise InvalidRequestError(refusal, field="expires_at")
        else:
            result = wallet.grant(
                account_id, kind, amount, wallet_key, expires_at=expires_at, source=source
            )
    g = result.grant
    body = {
        "grant": {
            "id": g.id,
            "kind": g.kind,
            "amount": fmt(g.original),
            "remaining": fmt(g.remaining),
            "expires_at": None if g.expires_at is None else g.expires_at.isoformat(),
            "source": g.source,
        },
        "transaction_id": result.transaction_id,
        "balance": {
            "free": fmt(result.balance.free),
            "paid": fmt(result.balance.paid),
            "held": fmt(result.balance.held),
            "available": fmt(result.balance.available),
        },
        "created_at": iso(to_micros(g.effective_at)),
    }
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return StoredResponse(201, text, replayed=result.replayed)
