"""API keys: created once and shown once, stored only as a hash, found by a public prefix.

A key reads `tt_<prefix>_<secret>`; the prefix is public and indexed, the secret is 256 random
bits kept only as its SHA-256 (a fast hash is enough for a random secret of that size) and
compared in constant time. Each key belongs to one account, or is an admin key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from talktime.errors import TalktimeError
from talktime.paging import unknown_cursor
from talktime.store.api_tables import api_keys
from talktime.store.rawsql import RawStatement
from talktime.store.tables import after_row

KEY_SCHEME = "tt"


class InvalidApiKeyError(TalktimeError):
    code = "unauthorized"
    status = 401
    title = "Invalid API key"


class KeyNotFoundError(TalktimeError):
    code = "not_found"
    status = 404
    title = "Not found"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: one account, or the admin (account_id None)."""

    key_id: str
    account_id: int | None
    admin: bool


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    prefix: str
    account_id: int | None
    admin: bool
    name: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class NewKey:
    """A key just created: `token` is the only time the secret is ever visible."""

    key: ApiKey
    token: str


def now_micros() -> int:
    """The current time in epoch microseconds (UTC)."""
    return time.time_ns() // 1000


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def create_key(
    conn: sa.Connection, account_id: int | None, *, admin: bool = False, name: str = ""
) -> NewKey:
    """Create a key for ``account_id`` (or an admin key) and return its token once."""
    if not admin and account_id is None:
        raise ValueError("a key belongs to an account unless it is an admin key")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    key = ApiKey(
        id=f"key_{uuid.uuid4().hex}",
        prefix=prefix,
        account_id=None if admin else account_id,
        admin=admin,
        name=name,
        created_at=now_micros(),
        revoked_at=None,
    )
    conn.execute(
        api_keys.insert().values(
            id=key.id,
            prefix=prefix,
            secret_hash=hash_secret(secret),
            account_id=key.account_id,
            admin=admin,
            name=name,
            created_at=key.created_at,
        )
    )
    return NewKey(key=key, token=f"{KEY_SCHEME}_{prefix}_{secret}")


CHECKED_COLUMNS = (
    api_keys.c.id,
    api_keys.c.secret_hash,
    api_keys.c.account_id,
    api_keys.c.admin,
    api_keys.c.revoked_at,
)
"""What `verified` reads of a stored key."""

KEY_BY_PREFIX = RawStatement(
    sa.select(*CHECKED_COLUMNS).where(api_keys.c.prefix == sa.bindparam("prefix"))
)
"""Every request runs it (on PostgreSQL the API sends many prefixes at once instead:
`api.pgkeys`): compiled once, executed on the DB-API cursor."""


def presented(token: str, admin_token: str | None = None) -> Principal | tuple[str, str]:
    """The admin principal if ``token`` is the settings' admin key, else the key's (prefix,
    secret) to look up; a malformed key is refused like an unknown one."""
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(key_id="settings", account_id=None, admin=True)
    parts = split_token(token)
    if parts is None:
        raise refusal()
    return parts


def verified(secret: str, rows: list[Any]) -> Principal:
    """The principal of the key found by its prefix (``rows``: `KEY_BY_PREFIX`'s), if
    ``secret`` is its secret and it is not revoked; the secret is hashed and compared even
    when no key was found, so a refusal takes the same time either way."""
    row = rows[0] if rows else None
    expected = row.secret_hash if row is not None else hash_secret("")
    matches = hmac.compare_digest(hash_secret(secret), expected)
    if row is None or not matches or row.revoked_at is not None:
        raise refusal()
    return Principal(key_id=row.id, account_id=row.account_id, admin=bool(row.admin))


def refusal() -> InvalidApiKeyError:
    """The one 401 for every refused key, missing ones included: which it was is no hint to
    give."""
    return InvalidApiKeyError(
        "The API key is missing, malformed, unknown or revoked; send a valid one: "
        "`Authorization: Bearer tt_...`."
    )


def authenticate(conn: sa.Connection, token: str, admin_token: str | None = None) -> Principal:
    """The principal of a presented key; refuse unknown, malformed and revoked keys alike."""
    found = presented(token, admin_token)
    if isinstance(found, Principal):
        return found
    prefix, secret = found
    return verified(secret, KEY_BY_PREFIX.rows(conn, {"prefix": prefix}))


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=str(row.id),
        prefix=str(row.prefix),
        account_id=row.account_id,
        admin=bool(row.admin),
        name=str(row.name),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


_COLUMNS = (
    api_keys.c.id,
    api_keys.c.prefix,
    api_keys.c.account_id,
    api_keys.c.admin,
    api_keys.c.name,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)


def list_keys(
    conn: sa.Connection,
    account_id: int | None = None,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> list[ApiKey]:
    """Keys (never their secrets), of one account or all, oldest first; ``after`` (a key id
    from the same list) and ``limit`` give one page: the keys listed after that one."""
    query = sa.select(*_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    if after is not None:
        # keys are never deleted (only revoked), so the cursor's place stays where it was
        scope = () if account_id is None else (api_keys.c.account_id == account_id,)
        later = after_row(conn, api_keys, after, *scope)
        if later is None:
            raise unknown_cursor(after, "a key of this list")
        query = query.where(later)
    if limit is not None:
        query = query.limit(limit)
    return [_key(row) for row in conn.execute(query)]


def revoke_key(conn: sa.Connection, key_id: str, account_id: int | None = None) -> ApiKey:
    """Revoke a key (idempotent); with ``account_id``, only a key of that account."""
    query = sa.select(*_COLUMNS).where(api_keys.c.id == key_id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    row = conn.execute(query).first()
    if row is None:
        raise KeyNotFoundError(f"No API key {key_id}.")
    if row.revoked_at is None:
        conn.execute(
            api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=now_micros())
        )
        row = conn.execute(sa.select(*_COLUMNS).where(api_keys.c.id == key_id)).one()
    return _key(row)
