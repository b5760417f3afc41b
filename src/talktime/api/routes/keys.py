"""API keys: an account manages its own keys; an admin creates, lists and revokes any key."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from talktime import keys
from talktime.api.auth import AccountId, Admin
from talktime.api.deps import Engine
from talktime.api.models import PageLimit, RowCursor, RowId, problems
from talktime.ids import MAX_ID
from talktime.paging import split_page
from talktime.service import accounts
from talktime.service.accounts import require_account
from talktime.service.common import iso
from talktime.store.writer import writing

router = APIRouter(tags=["keys"])


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200, description="A label to recognise the key by.")


class KeyOut(BaseModel):
    id: str
    prefix: str = Field(description="The public part of the key, shown in lists.")
    account_id: int | None
    admin: bool
    name: str
    created_at: str = Field(description="When the key was created (ISO 8601, UTC).")
    revoked_at: str | None = Field(description="When it was revoked (ISO 8601, UTC), or null.")


class NewKeyOut(KeyOut):
    key: str = Field(description="The API key. Shown only in this response: store it now.")


class KeyList(BaseModel):
    keys: list[KeyOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def _out(key: keys.ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        prefix=key.prefix,
        account_id=key.account_id,
        admin=key.admin,
        name=key.name,
        created_at=iso(key.created_at),
        revoked_at=None if key.revoked_at is None else iso(key.revoked_at),
    )


def _page(conn: sa.Connection, account_id: int | None, cursor: str | None, limit: int) -> KeyList:
    """One page of keys, oldest first (one more read than asked says whether more follow)."""
    found = keys.list_keys(conn, account_id, after=cursor, limit=limit + 1)
    page, next_cursor = split_page(found, limit, lambda k: k.id)
    return KeyList(keys=[_out(k) for k in page], next_cursor=next_cursor)


def _new(new: keys.NewKey) -> NewKeyOut:
    return NewKeyOut(**_out(new.key).model_dump(), key=new.token)


KeyId = Annotated[str, Path(max_length=40)]


@router.post("/v1/keys", status_code=201, response_model=NewKeyOut, responses=problems(403))
def create_key(body: KeyIn, account_id: AccountId, engine: Engine) -> NewKeyOut:
    """Create another API key for the key's account (shown once)."""
    accounts.require_active(engine, account_id)
    with writing(engine) as conn:
        return _new(keys.create_key(conn, account_id, name=body.name))


@router.get("/v1/keys", response_model=KeyList, responses=problems(403, 422))
def list_keys(
    account_id: AccountId,
    engine: Engine,
    cursor: RowCursor = None,
    limit: PageLimit = 100,
) -> KeyList:
    """The account's keys (prefixes only, never secrets), oldest first, a page at a time."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return _page(conn, account_id, cursor, limit)


@router.delete("/v1/keys/{key_id}", response_model=KeyOut, responses=problems(403, 404))
def revoke_key(key_id: KeyId, account_id: AccountId, engine: Engine) -> KeyOut:
    """Revoke one of the account's keys; it stops working at once."""
    with writing(engine) as conn:
        return _out(keys.revoke_key(conn, key_id, account_id=account_id))


@router.post(
    "/v1/admin/accounts/{account_id}/keys",
    status_code=201,
    response_model=NewKeyOut,
    responses=problems(403, 404),
    tags=["admin"],
)
def admin_create_key(account_id: RowId, body: KeyIn, _admin: Admin, engine: Engine) -> NewKeyOut:
    """Create an API key for any account (shown once)."""
    with writing(engine) as conn:
        require_account(conn, account_id)
        return _new(keys.create_key(conn, account_id, name=body.name))


@router.post(
    "/v1/admin/keys",
    status_code=201,
    response_model=NewKeyOut,
    responses=problems(403),
    tags=["admin"],
)
def admin_create_admin_key(body: KeyIn, _admin: Admin, engine: Engine) -> NewKeyOut:
    """Create another admin key (shown once)."""
    with writing(engine) as conn:
        return _new(keys.create_key(conn, None, admin=True, name=body.name))


@router.get(
    "/v1/admin/keys", response_model=KeyList, responses=problems(403, 404, 422), tags=["admin"]
)
def admin_list_keys(
    _admin: Admin,
    engine: Engine,
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cursor: RowCursor = None,
    limit: PageLimit = 100,
) -> KeyList:
    """Every key, or one account's keys, oldest first, a page at a time (404 `not_found` for
    an unknown account, as `/v1/admin/accounts/{account_id}/users` answers)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        if account_id is not None:
            require_account(conn, account_id)
        return _page(conn, account_id, cursor, limit)


@router.delete(
    "/v1/admin/keys/{key_id}", response_model=KeyOut, responses=problems(403, 404), tags=["admin"]
)
def admin_revoke_key(key_id: KeyId, _admin: Admin, engine: Engine) -> KeyOut:
    """Revoke any key."""
    with writing(engine) as conn:
        return _out(keys.revoke_key(conn, key_id))
