"""Operator use cases: create accounts (plans synced from the rate card), change plan and
subscription status, grant credit by hand, assign rate cards."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from talktime.config import Settings
from talktime.errors import TalktimeError
from talktime.paging import split_page, unknown_cursor
from talktime.rating import RateCard, load_card
from talktime.service import cards
from talktime.service import idempotency as idem
from talktime.service.balance import open_ended_period
from talktime.service.common import balance_dict, fmt, iso, now_micros, with_money_facts
from talktime.service.errors import InvalidRequestError, RequestConflictError
from talktime.service.idempotency import StoredResponse
from talktime.store.api_tables import account_cards
from talktime.store.wallet_tables import accounts as wallet_accounts
from talktime.store.writer import writing
from talktime.wallet import Wallet, accounts, cycle, grants
from talktime.wallet.book import Book
from talktime.wallet.errors import IdempotencyConflictError, PlanNotFoundError
from talktime.wallet.errors import InvalidRequestError as WalletInvalidRequestError
from talktime.wallet.idempotency import NO_ACCOUNT, fingerprint, lookup
from talktime.wallet.model import Account, Balances, Grant, GrantResult
from talktime.wallet.periods import from_micros, period_bounds_micros, to_micros


def sync_plans(conn: sa.Connection, card_name: str, settings: Settings) -> RateCard:
    """Copy the plans (monthly free credit) of the card in force into the plans table, in the
    caller's transaction (in name order, so concurrent syncs lock the rows in one order);
    returns that card."""
    card = load_card(card_name, directory=settings.rate_cards_dir)
    now = now_micros()
    for plan, free in sorted(card.plans.items()):
        accounts.upsert_plan(conn, plan, free, now)
    return card


def _account_fields(account: Account, rate_card: str) -> dict[str, Any]:
    """An account's own fields as API data (no balance)."""
    return {
        "id": account.id,
        "name": account.name,
        "plan": account.plan,
        "status": account.status,
        "currency": account.currency,
        "rate_card": rate_card,
        "monthly_limit": None if account.monthly_limit is None else fmt(account.monthly_limit),
        "low_balance_threshold": (
            None if account.low_balance_threshold is None else fmt(account.low_balance_threshold)
        ),
        "period_start": account.period_start.isoformat(),
        "period_end": account.period_end.isoformat(),
        "created_at": account.created_at.isoformat(),
    }


def account_dict(
    conn: sa.Connection, account: Account, balance: Balances, settings: Settings
) -> dict[str, Any]:
    """An account as API data."""
    return {
        **_account_fields(account, cards.card_name(conn, account.id, settings)),
        "balance": {
            "currency": account.currency,
            "free": fmt(balance.free),
            "paid": fmt(balance.paid),
            "held": fmt(balance.held),
            "available": fmt(balance.available),
        },
    }


def _no_plan(card: RateCard, plan: str, advice: str = "") -> PlanNotFoundError:
    known = ", ".join(repr(p) for p in sorted(card.plans))
    fix = f"choose one of {known}" if known else "import a version with a [plans] table"
    return PlanNotFoundError(
        f"rate card {card.name!r} has no plan {plan!r}{advice}; {fix}", plan=plan, card=card.name
    )


@contextmanager
def _plan_on(card: RateCard, plan: str) -> Iterator[None]:
    """A plan the card that prices the account does not have is refused naming the card's
    plans, before anything is written (until 1 Dec only the shared plans table was asked, so
    a plan of another card was accepted and its free credit, in that card's currency, given;
    the wallet's own sentence tells an embedder to add the plan, which the API cannot do)."""
    if plan not in card.plans:
        raise _no_plan(card, plan)
    try:
        yield
    except PlanNotFoundError:
        raise _no_plan(card, plan) from None


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
    low_balance_threshold: int | None = None,
) -> StoredResponse:
    """Create an account on ``plan`` (its first free credit issued) with optional purchased
    ``credit``, priced with ``rate_card`` (default: the configured card); one transaction.

    The answer is stored with the account under ``key``: a replay returns it byte for byte,
    and the same key with any other field (credit and rate card included) is refused (409).
    """
    request: dict[str, Any] = {
        "name": name,
        "plan": plan,
        "credit": credit,
        "rate_card": rate_card,
        "monthly_limit": monthly_limit,
    }
    if low_balance_threshold is not None:  # absent otherwise: older keys keep their digest
        request["low_balance_threshold"] = low_balance_threshold
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
    digest = fingerprint(CREATE_ACCOUNT, request)
    with writing(engine) as conn:
        book = Book(conn, now_micros())
        stored, wallet_key = _creation_records(book, key, digest)
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
                wallet_key,
                currency=card.currency,
                monthly_limit=request["monthly_limit"],
                low_balance_threshold=request.get("low_balance_threshold"),
            )
        account_id = created.account.id
        balance = created.balance
        credit, rate_card = request["credit"], request["rate_card"]
        if credit > 0:
            # its own prefix: `<key>:credit` was the wallet key of a message sent under
            # `y:credit` when the admin's key was `sms:y` (one of them was refused 409); a
            # creation from before answers were stored replays under the key it granted with
            credit_key = f"{key}:credit" if created.replayed else f"admin-credit:{key}"
            granted = grants.issue(
                book, account_id, "purchased", credit, credit_key, source="bootstrap"
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
        book.remember(NO_ACCOUNT, CREATION_ANSWER + key, CREATE_ACCOUNT, digest, body)
        book.flush()
        return StoredResponse(201, body, replayed=created.replayed)


CREATION_ANSWER = "answer\n"
"""Prefix of the wallet key (no account yet) an account creation's answer is kept under. It
was `answer:` until 1 Dec, where the creation under the key `answer:<key>` keeps its account:
whichever of `X` and `answer:X` came second was refused 409. An Idempotency-Key never holds a
line feed (`api.deps`; the CLI's are `cli:` + hex), so no key is another's answer now."""

_OLD_CREATION_ANSWER = "answer:"


def _creation_records(book: Book, key: str, digest: str) -> tuple[str | None, str]:
    """(the stored answer of the creation under ``key``, or None; the wallet key to create
    the account under). Raises `IdempotencyConflictError` when ``key`` answered another request.

    An answer stored before 1 Dec (`answer:<key>`, kept 30 days) still replays; a record there
    of the wallet's own operation is the account of the key `answer:<key>`, not an answer. The
    account is created under ``key``, so a creation from before answers were stored replays
    through the wallet, unless that record is another key's old answer (``key`` is `answer:X`):
    then under `account` + LF + ``key``, which no key reaches."""
    new, old = CREATION_ANSWER + key, _OLD_CREATION_ANSWER + key
    book.prefetch_keys(NO_ACCOUNT, [new, old, key])
    stored = book.replay(NO_ACCOUNT, new, CREATE_ACCOUNT, digest)
    if stored is None and _is_answer(book.keys[(NO_ACCOUNT, old)]):
        stored = book.replay(NO_ACCOUNT, old, CREATE_ACCOUNT, digest)
    taken = _is_answer(book.keys[(NO_ACCOUNT, key)])
    return stored, f"account\n{key}" if taken else key


def _is_answer(record: tuple[str, str, str] | None) -> bool:
    return record is not None and record[0] == CREATE_ACCOUNT


def get_account(engine: sa.Engine, settings: Settings, account_id: int) -> dict[str, Any]:
    """An account with its balances now (its ended period opened first, as `GET /v1/balance`
    does: the admin's view and the tenant's agree)."""
    open_ended_period(engine, account_id, settings, now_micros())
    wallet = Wallet(engine)
    account = wallet.account(account_id)
    b = wallet.balance(account_id)
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return account_dict(conn, account, Balances(b.free, b.paid, b.held, b.available), settings)


def list_accounts(
    engine: sa.Engine,
    settings: Settings,
    *,
    status: str | None = None,
    plan: str | None = None,
    cursor: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of the accounts, oldest first (ids above ``cursor``), optionally of one status
    or plan, without balances (`get_account` reads one's). An account whose period ended
    before the cycle opened the next shows the period holding now, as `get_account` would."""
    now = now_micros()
    query = (
        sa.select(wallet_accounts, account_cards.c.card)
        .select_from(
            wallet_accounts.outerjoin(
                account_cards, account_cards.c.account_id == wallet_accounts.c.id
            )
        )
        .order_by(wallet_accounts.c.id)
        .limit(limit + 1)  # one more than asked says whether another page follows
    )
    if status is not None:
        query = query.where(wallet_accounts.c.status == status)
    if plan is not None:
        query = query.where(wallet_accounts.c.plan == plan)
    if cursor is not None:
        query = query.where(wallet_accounts.c.id > cursor)
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        rows = conn.execute(query).all()
    page, next_cursor = split_page(rows, limit, lambda row: row.id)
    listed = []
    for row in page:
        account = accounts.as_account(row)
        if row.period_end <= now:
            start, end = period_bounds_micros(row.anchor_at, now)
            account = replace(account, period_start=from_micros(start), period_end=from_micros(end))
        listed.append(_account_fields(account, row.card or settings.rate_card))
    return {"accounts": listed, "next_cursor": next_cursor}


UPDATE_ACCOUNT = "admin.update_account"
"""The operation name of `PATCH /v1/admin/accounts/{id}` among the account's stored answers."""

GRANT_CREDIT = "admin.grant"
"""The operation name of `POST /v1/admin/accounts/{id}/grants` among the stored answers."""

ADMIN_SCOPE = "admin\n"
"""Prefix of the `api_requests` key of an admin request: the account's API clients keep theirs
there under the raw Idempotency-Key, which never holds a line feed (`api.deps` refuses CR, LF
and NUL, as HTTP does), so an admin's key and a tenant's key of the same account never meet."""


def answer_key(key: str) -> str:
    """The `api_requests` key an admin request made under the caller's ``key`` is kept under
    (one record per account and key, whichever admin route used it first)."""
    return ADMIN_SCOPE + key


def grant_key(key: str) -> str:
    """The wallet key of an admin grant made under the caller's ``key``."""
    return f"admin-grant:{key}"


def _legacy(conn: sa.Connection, account_id: int, key: str) -> tuple[str, str, str] | None:
    """The record of ``key`` from before admin answers were kept in `api_requests` (kept 30
    days): a PATCH's answer in the wallet as `{key}:answer` (operation, fingerprint, answer),
    or a grant's wallet record (operation `GRANT_CREDIT`, no answer); None if neither.

    A `{key}:answer` wallet record of another operation is a tenant's (`sms:` + `x:answer`),
    not an admin request: ignored."""
    old_answer = f"{key}:answer"
    found = lookup(conn, account_id, [old_answer, grant_key(key)])
    record = found.get(old_answer)
    if record is not None and record[0] == UPDATE_ACCOUNT:
        return record
    if grant_key(key) in found:
        return (GRANT_CREDIT, "", "")
    return None


def _change_key(conn: sa.Connection, account_id: int, key: str, field: str) -> str:
    """The wallet key of the `set_<field>` a PATCH under ``key`` makes: `admin-<field>:<key>`
    (apart from a tenant's `sms:`, `call:`... keys), or `<key>:<field>` where a PATCH made
    before answers were stored (before 30 Nov; kept 30 days) changed it, so that its replay
    replays the change instead of applying it again. A record there of another operation is
    a tenant's (`sms:` + `x:status`): not ours; nor is one today's code made for another key
    (`_derived`)."""
    old = f"{key}:{field}"
    record = lookup(conn, account_id, [old]).get(old)
    if record is None or record[0] != f"set_{field}" or _derived(conn, account_id, old, field):
        return f"admin-{field}:{key}"
    return old


def _derived(conn: sa.Connection, account_id: int, wallet_key: str, field: str) -> bool:
    """Whether the `set_<field>` record ``wallet_key`` is the `admin-<field>:<owner>` that a
    PATCH under the key `owner` made since answers are stored, rather than what a PATCH under
    `wallet_key` minus `:<field>` made before: the key `status` leaves `admin-status:status`,
    which is the old form for the key `admin-status` (a PATCH under it answered 200 with the
    account unchanged, or 409 on a key never used).

    Today's code stores the owner's answer in `api_requests` in the transaction of the change,
    and the purge drops both together (the wallet record is the older). Code before stored
    answers made such a record only for a key that itself began `admin-<field>:`, and then no
    answer of `owner` is stored: that old change is the key's, and still replays."""
    prefix = f"admin-{field}:"
    if not wallet_key.startswith(prefix):
        return False
    owner = wallet_key.removeprefix(prefix)
    return idem.operation_of(conn, account_id, answer_key(owner)) == UPDATE_ACCOUNT


def _conflict(key: str) -> RequestConflictError:
    return RequestConflictError(
        f"Idempotency-Key {key!r} was already used for a different request; "
        "use a new key for a new request.",
        idempotency_key=key,
    )


def _admin_request(key: str, work: Callable[[], StoredResponse]) -> StoredResponse:
    """Run ``work`` (which opens its transaction, replays and remembers under
    `answer_key(key)`), once more if a concurrent request with the same key committed its
    record first (then the second run replays it or refuses it); conflicts name ``key``."""
    with _named(key):
        for attempt in range(2):
            try:
                return work()
            except RequestConflictError:
                raise _conflict(key) from None  # not the namespaced key
            except sa.exc.IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Keep(enum.Enum):
    """The value of a setting a change leaves as it is (None would turn it off)."""

    KEEP = "keep"


KEEP = Keep.KEEP


def update_account(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    key: str,
    *,
    plan: str | None = None,
    status: str | None = None,
    rate_card: str | None = None,
    low_balance_threshold: int | Keep | None = KEEP,
) -> StoredResponse:
    """Change an account's plan, subscription status, rate card or low-balance threshold (None
    turns `balance.low` off), in one transaction.

    The card is assigned first, so a plan chosen and free credit due in the same request come
    from the new card. The answer is stored with the change in `api_requests` under
    `answer_key(key)`: a replay returns it byte for byte, and the same key with any other
    change (a rate card or plan added to a status change) or on a grant is refused (409).
    """
    request: dict[str, Any] = {"plan": plan, "status": status, "rate_card": rate_card}
    if low_balance_threshold is not KEEP:  # absent otherwise: older keys keep their digest
        request["low_balance_threshold"] = low_balance_threshold
    digest = fingerprint(UPDATE_ACCOUNT, request)
    return _admin_request(
        key, lambda: _update_account(engine, settings, account_id, key, request, digest)
    )


def _update_account(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    key: str,
    request: dict[str, Any],
    digest: str,
) -> StoredResponse:
    plan, status, rate_card = request["plan"], request["status"], request["rate_card"]
    with writing(engine) as conn:
        card = None
        if plan is not None:  # the plans rows before the account's, as on creation
            name = rate_card or cards.card_name(conn, account_id, settings)
            card = sync_plans(conn, name, settings)
        now = now_micros()
        # periods begun since the cycle last ran open with the plan, status and card they
        # began with: a change made now applies from the next period
        cycle.catch_up(conn, account_id, now, cards.plan_credit(settings))
        book = Book(conn, now)
        book.account(account_id)  # locked: a request with this key waits for this one
        stored = idem.replay(conn, account_id, answer_key(key), UPDATE_ACCOUNT, digest)
        if stored is not None:
            return stored
        old = _legacy(conn, account_id, key)
        if old is not None:
            if old[:2] != (UPDATE_ACCOUNT, digest):
                raise _conflict(key)
            return StoredResponse(200, old[2], replayed=True)
        if rate_card is not None and plan is None:
            # the account keeps its plan: the new card must have it, or the plan's free credit
            # would come from another card's row of that name, in that card's currency
            current = accounts.get_account(conn, account_id).plan
            target = load_card(rate_card, directory=settings.rate_cards_dir)
            if current not in target.plans:
                raise _no_plan(
                    target, current, " (the account's plan): give one of its plans as `plan`"
                )
        if rate_card is not None:
            cards.assign(conn, account_id, rate_card, settings)
        if plan is not None and card is not None:
            with _plan_on(card, plan):
                plan_key = _change_key(conn, account_id, key, "plan")
                accounts.update(book, account_id, "set_plan", {"plan": plan}, plan_key)
        if status is not None:
            accounts.update(
                book,
                account_id,
                "set_status",
                {"status": status},
                _change_key(conn, account_id, key, "status"),
                plan_credit=cards.plan_credit(settings),
            )
        if "low_balance_threshold" in request:  # no PATCH before stored answers set it
            accounts.update(
                book,
                account_id,
                "set_low_balance_threshold",
                {"low_balance_threshold": request["low_balance_threshold"]},
                f"admin-low-balance:{key}",
            )
        book.flush()
        account = accounts.get_account(conn, account_id)
        b = accounts.read_balance(conn, account_id, book.now)
        body = account_dict(conn, account, Balances(b.free, b.paid, b.held, b.available), settings)
        response = StoredResponse(200, _text(body))
        idem.remember(conn, account_id, answer_key(key), UPDATE_ACCOUNT, digest, response)
        return response


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
    """Grant credit by hand (promotional, purchased, refund), in one transaction with its
    answer, stored in `api_requests` under `answer_key(key)`: a replay answers the original
    grant and balances, marked replayed; the same key with another grant or on an account
    change is refused (409). An ``expires_at`` already past is refused (422), unless ``key``
    granted this very request while it was still ahead."""
    request = {
        "kind": kind,
        "amount": amount,
        "expires_at": None if expires_at is None else to_micros(expires_at),
        "source": source,
    }
    digest = fingerprint(GRANT_CREDIT, request)
    return _admin_request(
        key,
        lambda: _grant_credit(engine, account_id, key, digest, kind, amount, expires_at, source),
    )


def _grant_credit(
    engine: sa.Engine,
    account_id: int,
    key: str,
    digest: str,
    kind: str,
    amount: int,
    expires_at: datetime | None,
    source: str | None,
) -> StoredResponse:
    wallet_key = grant_key(key)
    with writing(engine) as conn:
        book = Book(conn, now_micros())
        book.account(account_id, wallet_key)  # locked: a request with this key waits for this
        stored = idem.replay(conn, account_id, answer_key(key), GRANT_CREDIT, digest)
        if stored is not None:
            return stored
        old = _legacy(conn, account_id, key)
        if old is not None and old[0] != GRANT_CREDIT:
            raise _conflict(key)  # an account change before the upgrade
        # a grant before the upgrade has no answer here: its wallet record replays it below
        past = expires_at is not None and expires_at <= datetime.now(UTC)
        try:
            result = grants.issue(
                book, account_id, kind, amount, wallet_key, expires_at=expires_at, source=source
            )
        except WalletInvalidRequestError:
            if not past:
                raise
            result = None  # not a replay: the grant itself is refused
        if result is None or (past and not result.replayed):
            raise InvalidRequestError("expires_at must be in the future.", field="expires_at")
        book.flush()
        currency = accounts.currency_of(conn, account_id)
        assert currency is not None  # the account is locked in this transaction
        body = _grant_body(result, currency)
        response = StoredResponse(201, _text(body), replayed=result.replayed)
        idem.remember(conn, account_id, answer_key(key), GRANT_CREDIT, digest, response)
        return response


def _grant_body(result: GrantResult, currency: str) -> dict[str, Any]:
    g = result.grant
    return {
        "grant": {
            "id": g.id,
            "kind": g.kind,
            "amount": fmt(g.original),
            "remaining": fmt(g.remaining),
            "expires_at": None if g.expires_at is None else g.expires_at.isoformat(),
            "source": g.source,
        },
        "transaction_id": result.transaction_id,
        "balance": balance_dict(result.balance, currency),
        "created_at": iso(to_micros(g.effective_at)),
    }


def _text(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


REFUND_CREDIT = "admin.refund"
"""The operation name of `POST /v1/admin/accounts/{id}/refunds` among the stored answers."""


def refund_key(key: str) -> str:
    """The wallet key of an admin refund made under the caller's ``key``."""
    return f"admin-refund:{key}"


def list_grants(
    engine: sa.Engine,
    account_id: int,
    *,
    live: bool = False,
    cursor: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """A page of the account's grants in consumption order, each with what a refund could
    take back now (unspent, unexpired, unreserved purchased credit; 0 for every other kind).
    ``live`` keeps the grants with credit left; ``cursor`` is the id of the previous page's
    last grant, whose place in the order never moves (a grant's order key is never changed),
    so a grant drained since still marks where the next page starts."""
    wallet = Wallet(engine)
    try:
        now = datetime.now(UTC)
        currency = wallet.account(account_id).currency
        every = wallet.grants(account_id)
    finally:
        wallet.close()
    listed = [g for g in every if g.remaining > 0] if live else every
    if cursor is not None:
        place = next((i for i, g in enumerate(every) if str(g.id) == cursor), None)
        if place is None:
            raise unknown_cursor(cursor, "a grant of this account")
        after = {g.id for g in every[place + 1 :]}
        listed = [g for g in listed if g.id in after]
    page, next_cursor = split_page(listed, limit, lambda g: g.id)
    return {
        "currency": currency,
        "grants": [
            {
                "id": g.id,
                "kind": g.kind,
                "amount": fmt(g.original),
                "remaining": fmt(g.remaining),
                "held": fmt(g.held),
                "effective_at": g.effective_at.isoformat(),
                "expires_at": None if g.expires_at is None else g.expires_at.isoformat(),
                "source": g.source,
                "refundable": fmt(_refundable(g, now)),
            }
            for g in page
        ],
        "next_cursor": next_cursor,
    }


def _refundable(g: Grant, now: datetime) -> int:
    """What `grants.refund` would take back from ``g`` at ``now``."""
    expires_at = None if g.expires_at is None else to_micros(g.expires_at)
    return grants.refundable(g.kind, g.remaining, g.held, expires_at, to_micros(now))


def refund_credit(
    engine: sa.Engine, account_id: int, grant_id: int, amount: int, key: str
) -> StoredResponse:
    """Take back ``amount`` of a grant's unspent purchased credit (the operator pays the money
    back through the payment provider), in one transaction with its answer stored under
    `answer_key(key)`: a replay answers the original, marked replayed; the same key for another
    request is refused (409). A refusal (`grant_not_found`, `refund_not_allowed`) stores
    nothing."""
    digest = fingerprint(REFUND_CREDIT, {"grant_id": grant_id, "amount": amount})
    return _admin_request(
        key, lambda: _refund_credit(engine, account_id, key, digest, grant_id, amount)
    )


def _refund_credit(
    engine: sa.Engine, account_id: int, key: str, digest: str, grant_id: int, amount: int
) -> StoredResponse:
    wallet_key = refund_key(key)
    with writing(engine) as conn:
        now = now_micros()
        book = Book(conn, now)
        book.account(account_id, wallet_key)  # locked: a request with this key waits for this
        stored = idem.replay(conn, account_id, answer_key(key), REFUND_CREDIT, digest)
        if stored is not None:
            return stored
        currency = accounts.currency_of(conn, account_id)
        assert currency is not None  # the account is locked in this transaction
        try:
            result = grants.refund(book, account_id, grant_id, amount, wallet_key)
        except TalktimeError as refusal:  # `needed` and `refundable` as decimal strings
            raise with_money_facts(refusal, currency) from None
        book.flush()
        body = {
            "transaction_id": result.transaction_id,
            "grant_id": result.grant_id,
            "amount": fmt(result.amount),
            "balance": balance_dict(result.balance, currency),
            "created_at": iso(now),
        }
        response = StoredResponse(201, _text(body), replayed=result.replayed)
        idem.remember(conn, account_id, answer_key(key), REFUND_CREDIT, digest, response)
        return response
