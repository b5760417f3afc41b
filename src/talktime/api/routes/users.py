"""Users and roles: `/v1/users` with an account key, `/v1/admin/accounts/{id}/users` for admins."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from talktime import policy
from talktime.api.auth import AccountId, Admin
from talktime.api.deps import Engine
from talktime.api.models import PageLimit, RowCursor, RowId, problems
from talktime.paging import split_page
from talktime.service import accounts
from talktime.service import users as service
from talktime.service.accounts import require_account
from talktime.store.writer import writing

router = APIRouter(tags=["users"])

Permission = Annotated[str, Field(examples=["calls.make"], pattern=r"^[a-z.]+$", max_length=40)]
ActingUser = Annotated[
    str | None,
    Field(
        max_length=40,
        description="The user making this change; when given, that user needs the `admin` "
        "permission (403 `permission_denied` otherwise).",
    ),
]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: policy.Role = "member"
    restrictions: list[Permission] = Field(
        default_factory=list, max_length=4, description="Permissions taken away from this user."
    )
    acting_user: ActingUser = None


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    role: policy.Role | None = None
    restrictions: list[Permission] | None = Field(None, max_length=4)
    acting_user: ActingUser = None


class UserOut(BaseModel):
    id: str
    account_id: int
    name: str
    role: str
    restrictions: list[str]
    permissions: list[str]


class UserList(BaseModel):
    users: list[UserOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def _out(user: service.User) -> UserOut:
    return UserOut(
        id=user.id,
        account_id=user.account_id,
        name=user.name,
        role=user.role,
        restrictions=sorted(user.restrictions),
        permissions=sorted(user.permissions),
    )


def _require_admin(conn: sa.Connection, account_id: int, acting_user: str | None) -> None:
    """A change made by a named user needs that user's `admin` permission."""
    if acting_user is not None:
        actor = service.actor(conn, account_id, acting_user, field="acting_user")
        policy.require_permission(actor, "admin")


def _create(engine: sa.Engine, account_id: int, body: UserIn) -> UserOut:
    with writing(engine) as conn:
        require_account(conn, account_id)
        _require_admin(conn, account_id, body.acting_user)
        return _out(service.create_user(conn, account_id, body.name, body.role, body.restrictions))


def _list(engine: sa.Engine, account_id: int, cursor: str | None, limit: int) -> UserList:
    """One page of the account's users (one more read than asked says whether more follow)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        require_account(conn, account_id)
        found = service.list_users(conn, account_id, after=cursor, limit=limit + 1)
    page, next_cursor = split_page(found, limit, lambda u: u.id)
    return UserList(users=[_out(u) for u in page], next_cursor=next_cursor)


def _patch(engine: sa.Engine, account_id: int, user_id: str, body: UserPatch) -> UserOut:
    with writing(engine) as conn:
        require_account(conn, account_id)  # an unknown account is 404 account_not_found
        _require_admin(conn, account_id, body.acting_user)
        user = service.update_user(
            conn,
            account_id,
            user_id,
            name=body.name,
            role=body.role,
            restrictions=body.restrictions,
        )
        return _out(user)


UserId = Annotated[str, Path(max_length=40)]


@router.post("/v1/users", status_code=201, response_model=UserOut, responses=problems(403))
def create_user(body: UserIn, account_id: AccountId, engine: Engine) -> UserOut:
    """Add a user (with a role and optional restrictions) to the key's account; an
    `acting_user` needs `admin`."""
    accounts.require_active(engine, account_id)
    return _create(engine, account_id, body)


@router.get("/v1/users", response_model=UserList, responses=problems(403, 422))
def list_users(
    account_id: AccountId, engine: Engine, cursor: RowCursor = None, limit: PageLimit = 100
) -> UserList:
    """The users of the key's account, oldest first, a page at a time."""
    return _list(engine, account_id, cursor, limit)


@router.get("/v1/users/{user_id}", response_model=UserOut, responses=problems(403, 404))
def get_user(user_id: UserId, account_id: AccountId, engine: Engine) -> UserOut:
    """One user of the key's account."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return _out(service.get_user(conn, account_id, user_id))


@router.patch("/v1/users/{user_id}", response_model=UserOut, responses=problems(403, 404))
def update_user(user_id: UserId, body: UserPatch, account_id: AccountId, engine: Engine) -> UserOut:
    """Change a user's name, role or restrictions (e.g. restrict calling or SMS); an
    `acting_user` needs `admin`."""
    accounts.require_active(engine, account_id)
    return _patch(engine, account_id, user_id, body)


@router.post(
    "/v1/admin/accounts/{account_id}/users",
    status_code=201,
    response_model=UserOut,
    responses=problems(403, 404),
    tags=["admin"],
)
def admin_create_user(account_id: RowId, body: UserIn, _admin: Admin, engine: Engine) -> UserOut:
    """Add a user to any account (admin key)."""
    return _create(engine, account_id, body)


@router.get(
    "/v1/admin/accounts/{account_id}/users",
    response_model=UserList,
    responses=problems(403, 404, 422),
    tags=["admin"],
)
def admin_list_users(
    account_id: RowId,
    _admin: Admin,
    engine: Engine,
    cursor: RowCursor = None,
    limit: PageLimit = 100,
) -> UserList:
    """The users of any account (admin key), oldest first, a page at a time."""
    return _list(engine, account_id, cursor, limit)


@router.patch(
    "/v1/admin/accounts/{account_id}/users/{user_id}",
    response_model=UserOut,
    responses=problems(403, 404),
    tags=["admin"],
)
def admin_update_user(
    account_id: RowId, user_id: UserId, body: UserPatch, _admin: Admin, engine: Engine
) -> UserOut:
    """Change a user's role or restrictions in any account (admin key)."""
    return _patch(engine, account_id, user_id, body)
