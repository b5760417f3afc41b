"""Users of an account: name, role and the permissions an admin took away from them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from talktime import policy
from talktime.paging import unknown_cursor
from talktime.service.errors import InvalidRequestError, NotFoundError, UnknownUserError
from talktime.store.api_tables import users
from talktime.store.tables import after_row


@dataclass(frozen=True)
class User:
    """A user as stored."""

    id: str
    account_id: int
    name: str
    role: str
    restrictions: frozenset[str]
    created_at: int

    @property
    def permissions(self) -> frozenset[str]:
        """What the user may do now."""
        return self.actor.permissions

    @property
    def actor(self) -> policy.Actor:
        """The user as policy sees it."""
        return policy.Actor(self.id, self.role, self.restrictions)


def _role(role: str) -> str:
    if role not in policy.ROLES:
        raise InvalidRequestError(
            f"Unknown role {role!r}; use one of {', '.join(policy.ROLES)}.", field="role"
        )
    return role


def _name(name: str) -> str:
    """A user's name: some text besides spaces (as an account's name)."""
    if not name.strip():
        raise InvalidRequestError("A user's name needs more than spaces.", field="name")
    return name


def _checked_restrictions(restrictions: Iterable[str]) -> frozenset[str]:
    """`policy.check_restrictions`, its refusal naming the field (`restrictions`)."""
    try:
        return policy.check_restrictions(restrictions)
    except policy.UnknownPermissionError as refusal:
        raise policy.UnknownPermissionError(
            refusal.detail, **{**refusal.extra, "field": "restrictions"}
        ) from None


def _user(row: Any) -> User:
    return User(
        id=row.id,
        account_id=int(row.account_id),
        name=row.name,
        role=row.role,
        restrictions=_restrictions(row.restrictions),
        created_at=int(row.created_at),
    )


def create_user(
    conn: sa.Connection,
    account_id: int,
    name: str,
    role: str = "member",
    restrictions: Iterable[str] = (),
) -> User:
    """Add a user to an account."""
    user = User(
        id=f"usr_{uuid.uuid4().hex}",
        account_id=account_id,
        name=_name(name),
        role=_role(role),
        restrictions=_checked_restrictions(restrictions),
        created_at=time.time_ns() // 1000,
    )
    conn.execute(
        users.insert().values(
            id=user.id,
            account_id=account_id,
            name=name,
            role=user.role,
            restrictions=" ".join(sorted(user.restrictions)),
            created_at=user.created_at,
        )
    )
    return user


def get_user(conn: sa.Connection, account_id: int, user_id: str) -> User:
    """A user of the account (404 for another account's user)."""
    row = conn.execute(
        sa.select(users).where(users.c.id == user_id, users.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFoundError(f"No user {user_id} in this account.")
    return _user(row)


def _restrictions(stored: str | None) -> frozenset[str]:
    """The restrictions column (space-separated) as a set."""
    return frozenset((stored or "").split())


def actor_of(user_id: str, role: str | None, restrictions: str | None) -> policy.Actor:
    """The actor for a user row read elsewhere (``role`` None: no such user in the account,
    422 naming the field `user`)."""
    if role is None:
        raise _unknown_user(user_id, "user")
    return policy.Actor(user_id, role, _restrictions(restrictions))


def actor(
    conn: sa.Connection, account_id: int, user_id: str, *, field: str = "user"
) -> policy.Actor:
    """The user a request is made for, as policy sees it (422 if unknown to the account,
    naming ``field``, the request's input that gave the id)."""
    try:
        return get_user(conn, account_id, user_id).actor
    except NotFoundError:
        raise _unknown_user(user_id, field) from None


def _unknown_user(user_id: str, field: str) -> UnknownUserError:
    if not user_id:
        detail = f"The {field} id is empty; give the id of a user of this account."
    else:
        detail = f"User {user_id} is not a user of this account; create it first."
    return UnknownUserError(detail, user=user_id, field=field)


def list_users(
    conn: sa.Connection,
    account_id: int,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> list[User]:
    """The account's users, oldest first; ``after`` (a user id of the account) and ``limit``
    give one page: the users listed after that one."""
    query = (
        sa.select(users)
        .where(users.c.account_id == account_id)
        .order_by(users.c.created_at, users.c.id)
    )
    if after is not None:
        # users are never deleted, so the cursor's place stays where it was
        later = after_row(conn, users, after, users.c.account_id == account_id)
        if later is None:
            raise unknown_cursor(after, "a user of this account")
        query = query.where(later)
    if limit is not None:
        query = query.limit(limit)
    return [_user(row) for row in conn.execute(query)]


def update_user(
    conn: sa.Connection,
    account_id: int,
    user_id: str,
    *,
    name: str | None = None,
    role: str | None = None,
    restrictions: Iterable[str] | None = None,
) -> User:
    """Change a user's name, role or restrictions."""
    get_user(conn, account_id, user_id)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _name(name)
    if role is not None:
        values["role"] = _role(role)
    if restrictions is not None:
        values["restrictions"] = " ".join(sorted(_checked_restrictions(restrictions)))
    if values:
        conn.execute(
            users.update()
            .where(users.c.id == user_id, users.c.account_id == account_id)
            .values(**values)
        )
    return get_user(conn, account_id, user_id)


def require_permission_of(
    engine: sa.Engine, account_id: int, user_id: str | None, permission: policy.Permission
) -> None:
    """When a request names the user it is made for, refuse unless that user has ``permission``.

    An API key acts for its whole account; naming a user narrows the request to what that user
    may do (403 `permission_denied`, 422 for a user the account does not have).
    """
    if user_id is None:
        return
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:  # a read
        policy.require_permission(actor(conn, account_id, user_id), permission)
