"""Admin endpoints (admin key): accounts, subscription status and plans, manual grants, and
rate cards (list, import, activate a version, assign to an account)."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from talktime import money
from talktime.api.auth import Admin
from talktime.api.deps import Engine, IdempotencyKey
from talktime.api.models import (
    Amount,
    BalanceSnapshot,
    IdCursor,
    PageLimit,
    PositiveAmount,
    RowId,
    TimeInRange,
    problems,
    stored,
)
from talktime.rating import InvalidRateCardError, import_card, list_cards
from talktime.service import admin as service
from talktime.service import cards
from talktime.service.accounts import require_existing

router = APIRouter(tags=["admin"])

# the names `talktime.rating.loader.NAME` accepts for a card (dots included: "acme.v2")
CardName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", examples=["default"])]
PlanName = Annotated[str, Field(min_length=1, max_length=64, examples=["business"])]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    plan: PlanName
    credit: Amount = Field("0", description="Purchased credit to start with.")
    rate_card: CardName | None = None
    monthly_limit: Amount | None = None
    low_balance_threshold: Amount | None = Field(
        None,
        description="Queue `balance.low` when a debit or expiry takes available credit from at "
        "least this amount to under it; null or left out: never.",
    )


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: PlanName | None = None
    status: Literal["active", "past_due", "canceled"] | None = None
    rate_card: CardName | None = Field(None, description="Price the account with this card.")
    low_balance_threshold: Amount | None = Field(
        None,
        description="Queue `balance.low` when a debit or expiry takes available credit from at "
        "least this amount to under it; null turns the event off; left out: unchanged.",
    )


class AccountSummary(BaseModel):
    id: int
    name: str
    plan: str
    status: Literal["active", "past_due", "canceled"]
    currency: str
    rate_card: str
    monthly_limit: str | None
    low_balance_threshold: str | None = Field(
        None,
        description="The available credit under which a debit queues `balance.low`; null: "
        "never. (Absent only in the replay of an answer stored before the field existed.)",
    )
    period_start: str
    period_end: str
    created_at: str


class AccountOut(AccountSummary):
    balance: BalanceSnapshot


class AccountList(BaseModel):
    accounts: list[AccountSummary] = Field(
        description="Oldest first, without balances (`GET /v1/admin/accounts/{id}` has them)."
    )
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["promotional", "purchased", "refund"]
    amount: PositiveAmount
    expires_at: TimeInRange | None = None
    source: str | None = Field(None, max_length=200)


class GrantOut(BaseModel):
    class Grant(BaseModel):
        id: int
        kind: str
        amount: str
        remaining: str
        expires_at: str | None
        source: str | None

    grant: Grant
    transaction_id: str
    balance: BalanceSnapshot
    created_at: str


class GrantRow(BaseModel):
    id: int
    kind: Literal["free_monthly", "purchased", "promotional", "refund"]
    amount: str = Field(description="What the grant gave.")
    remaining: str = Field(description="What is left of it (held included).")
    held: str = Field(description="What pending holds reserve of it.")
    effective_at: str
    expires_at: str | None
    source: str | None
    refundable: str = Field(
        description="What `POST /v1/admin/accounts/{id}/refunds` can take back from it now: "
        "unspent, unexpired, unreserved purchased credit; 0.0000 for every other kind."
    )


class GrantList(BaseModel):
    currency: str
    grants: list[GrantRow] = Field(description="In consumption order.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant_id: RowId
    amount: PositiveAmount


class RefundOut(BaseModel):
    transaction_id: str
    grant_id: int
    amount: str
    balance: BalanceSnapshot
    created_at: str


class CardOut(BaseModel):
    name: str
    version: str
    effective_from: str
    currency: str
    description: str
    plans: dict[str, str]


class CardListed(CardOut):
    in_force: bool = Field(description="This version prices the card's accounts now.")
    pinned: bool = Field(
        description="This version is activated (pinned): in force whatever the effective dates."
    )


class CardList(BaseModel):
    cards: list[CardListed]


class CardInForce(BaseModel):
    """Which version of a card prices now, and whether it is pinned."""

    name: str
    version: str | None = Field(
        description="The version in force now; null while none is (every version takes effect "
        "later and none is activated)."
    )
    effective_from: str | None
    pinned: bool = Field(
        description="True when `version` is in force because it was activated, false when its "
        "effective date chose it."
    )


class CardIn(BaseModel):
    """A rate card version's files, as text."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    card_toml: str = Field(alias="card.toml", max_length=100_000)
    sms_csv: str = Field(alias="sms.csv", max_length=1_000_000)
    voice_csv: str = Field(alias="voice.csv", max_length=1_000_000)
    numbers_csv: str = Field(alias="numbers.csv", max_length=1_000_000)


class CardImported(CardOut):
    new: bool = Field(description="False when this exact version was already imported.")


@router.post(
    "/v1/admin/accounts",
    status_code=201,
    response_model=AccountOut,
    responses=problems(403, 404, 409),
)
def create_account(
    body: AccountIn, request: Request, _admin: Admin, engine: Engine, key: IdempotencyKey
) -> Response:
    """Create an account on a plan (its free monthly credit issued at once), with optional
    starting credit, rate card, monthly limit and low-balance threshold. A replay of the key
    answers the original response."""
    result = service.create_account(
        engine,
        request.app.state.settings,
        body.name,
        body.plan,
        key,
        credit=money.parse(body.credit),
        rate_card=body.rate_card,
        monthly_limit=_micros(body.monthly_limit),
        low_balance_threshold=_micros(body.low_balance_threshold),
    )
    return stored(result.status, result.body, replayed=result.replayed)


@router.get("/v1/admin/accounts", response_model=AccountList, responses=problems(403, 422))
def list_accounts(
    request: Request,
    _admin: Admin,
    engine: Engine,
    status: Annotated[
        Literal["active", "past_due", "canceled"] | None,
        Query(description="Only accounts in this subscription state."),
    ] = None,
    plan: Annotated[
        str | None, Query(max_length=64, description="Only accounts on this plan.")
    ] = None,
    cursor: IdCursor = None,
    limit: PageLimit = 100,
) -> dict[str, Any]:
    """The accounts, oldest first, a page at a time (optionally of one status or plan)."""
    return service.list_accounts(
        engine,
        request.app.state.settings,
        status=status,
        plan=plan,
        cursor=None if cursor is None else int(cursor),
        limit=limit,
    )


@router.get(
    "/v1/admin/accounts/{account_id}", response_model=AccountOut, responses=problems(403, 404)
)
def get_account(
    account_id: RowId, request: Request, _admin: Admin, engine: Engine
) -> dict[str, Any]:
    """An account with its balances."""
    require_existing(engine, account_id)
    return service.get_account(engine, request.app.state.settings, account_id)


@router.patch(
    "/v1/admin/accounts/{account_id}",
    response_model=AccountOut,
    responses=problems(403, 404, 409),
)
def update_account(
    account_id: RowId,
    body: AccountPatch,
    request: Request,
    _admin: Admin,
    engine: Engine,
    key: IdempotencyKey,
) -> Response:
    """Change the plan (free credit from the next period), the subscription status, the rate
    card, or the low-balance threshold (null turns `balance.low` off). A replay of the key
    answers the original response; the same key with another change is 409
    `idempotency_conflict`."""
    require_existing(engine, account_id)
    result = service.update_account(
        engine,
        request.app.state.settings,
        account_id,
        key,
        plan=body.plan,
        status=body.status,
        rate_card=body.rate_card,
        low_balance_threshold=(
            _micros(body.low_balance_threshold)
            if "low_balance_threshold" in body.model_fields_set
            else service.KEEP
        ),
    )
    return stored(result.status, result.body, replayed=result.replayed)


def _micros(amount: str | None) -> int | None:
    """An optional decimal amount as micro-units."""
    return None if amount is None else money.parse(amount)


@router.post(
    "/v1/admin/accounts/{account_id}/grants",
    status_code=201,
    response_model=GrantOut,
    responses=problems(403, 404, 409),
)
def grant_credit(
    account_id: RowId, body: GrantIn, _admin: Admin, engine: Engine, key: IdempotencyKey
) -> Response:
    """Grant credit by hand (promotional, purchased or refund)."""
    require_existing(engine, account_id)
    result = service.grant_credit(
        engine,
        account_id,
        body.kind,
        money.parse(body.amount),
        key,
        expires_at=body.expires_at,  # a Time: UTC when sent without a zone
        source=body.source,
    )
    return stored(result.status, result.body, replayed=result.replayed)


@router.get(
    "/v1/admin/accounts/{account_id}/grants",
    response_model=GrantList,
    responses=problems(403, 404, 422),
)
def list_grants(
    account_id: RowId,
    _admin: Admin,
    engine: Engine,
    live: Annotated[
        bool, Query(description="Only the grants with credit left (remaining above 0).")
    ] = False,
    cursor: IdCursor = None,
    limit: PageLimit = 100,
) -> dict[str, Any]:
    """The account's grants (lots of credit) in consumption order, a page at a time, with
    what a refund could take back from each. The cursor is the previous page's last grant id;
    one that is not a grant of the account is a 422 naming `cursor`."""
    require_existing(engine, account_id)
    return service.list_grants(engine, account_id, live=live, cursor=cursor, limit=limit)


@router.post(
    "/v1/admin/accounts/{account_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    responses=problems(403, 404, 409),
)
def refund_credit(
    account_id: RowId, body: RefundIn, _admin: Admin, engine: Engine, key: IdempotencyKey
) -> Response:
    """Take back unspent purchased credit from a grant, as when an account closes: a `refund`
    ledger entry; pay the money back through the payment provider yourself. 409
    `refund_not_allowed` for credit that is not purchased, spent, expired, held or less than
    asked (saying how much can be); 404 `grant_not_found` for a grant of no such account."""
    require_existing(engine, account_id)
    result = service.refund_credit(engine, account_id, body.grant_id, money.parse(body.amount), key)
    return stored(result.status, result.body, replayed=result.replayed)


def _card(card: Any) -> dict[str, Any]:
    return {
        "name": card.name,
        "version": card.version,
        "effective_from": card.effective_from.isoformat(),
        "currency": card.currency,
        "description": card.description,
        "plans": {plan: money.format(free, 2) for plan, free in card.plans.items()},
    }


def _in_force(state: cards.InForce) -> dict[str, Any]:
    return {
        "name": state.name,
        "version": state.version,
        "effective_from": None if state.card is None else state.card.effective_from.isoformat(),
        "pinned": state.pinned,
    }


@router.get("/v1/admin/rate-cards", response_model=CardList, responses=problems(403))
def rate_cards(request: Request, _admin: Admin) -> dict[str, Any]:
    """Every rate card version, shipped and imported, with the version in force of each card
    and whether it is pinned (activated)."""
    settings = request.app.state.settings
    listed = list_cards(settings.rate_cards_dir)
    states = {name: cards.in_force(name, settings) for name in {c.name for c in listed}}
    return {
        "cards": [
            {
                **_card(c),
                "in_force": states[c.name].version == c.version,
                "pinned": states[c.name].pin == c.version,
            }
            for c in listed
        ]
    }


CardPath = Annotated[str, Path(description="Rate card name.", examples=["default"])]
VersionPath = Annotated[str, Path(description="Version of the card.", examples=["2026.11.1"])]


@router.post(
    "/v1/admin/rate-cards/{name}/versions/{version}/activate",
    response_model=CardInForce,
    responses=problems(
        403, 404, described={404: "No such card or version (`rate_card_not_found`)"}
    ),
)
def activate_rate_card(
    name: CardPath, version: VersionPath, request: Request, _admin: Admin
) -> dict[str, Any]:
    """Pin the version in force: from now on this version prices the card's accounts, whatever
    the effective dates (put a new version live now, or roll back), until another version is
    activated or `DELETE /v1/admin/rate-cards/{name}/activation` removes the pin. Activating
    the pinned version again changes nothing. Every server process sees the pin."""
    return _in_force(cards.activate(name, version, request.app.state.settings))


@router.delete(
    "/v1/admin/rate-cards/{name}/activation",
    response_model=CardInForce,
    responses=problems(403, 404, described={404: "No such card (`rate_card_not_found`)"}),
)
def deactivate_rate_card(name: CardPath, request: Request, _admin: Admin) -> dict[str, Any]:
    """Remove the card's pin: the version with the latest `effective_from` on or before today
    is in force again. A card with no pin is left as it is."""
    return _in_force(cards.deactivate(name, request.app.state.settings))


@router.post(
    "/v1/admin/rate-cards",
    status_code=201,
    response_model=CardImported,
    responses=problems(400, 403, 409),
)
def import_rate_card(body: CardIn, request: Request, _admin: Admin) -> dict[str, Any]:
    """Validate and import a rate card version (refused with file, line and column on any
    error). A version never changes once imported; it applies from its `effective_from` date
    to the accounts priced with that card (`PATCH /v1/admin/accounts/{id}` assigns a card)."""
    files = {
        "card.toml": body.card_toml,
        "sms.csv": body.sms_csv,
        "voice.csv": body.voice_csv,
        "numbers.csv": body.numbers_csv,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (FilePath(tmp) / name).write_text(text, encoding="utf-8")
        try:
            card, new = import_card(tmp, request.app.state.settings.rate_cards_dir)
        except InvalidRateCardError as exc:
            raise _uploaded(exc, str(FilePath(tmp))) from None
    return {**_card(card), "new": new}


def _uploaded(exc: InvalidRateCardError, directory: str) -> InvalidRateCardError:
    """The refusal naming the uploaded card, not the server's temporary `directory`."""
    detail = exc.detail.replace(f"rate card {directory}", "the uploaded rate card")
    return InvalidRateCardError(detail.replace(directory, "the upload"), **exc.extra)
