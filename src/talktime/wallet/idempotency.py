"""Idempotency keys: request fingerprints, stored responses, conflicts and the 30-day purge.

A key belongs to an account. Only successful requests are stored, with the exact JSON text of
their result, so a replay returns it byte for byte; a refused request leaves its key free.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from talktime.store.rawsql import RawStatement
from talktime.store.tables import purge_older
from talktime.store.wallet_tables import idempotency
from talktime.wallet.errors import IdempotencyConflictError, InvalidRequestError
from talktime.wallet.inputs import encodes_as_utf8

RETENTION_MICROS: Final = 30 * 86_400 * 1_000_000
"""Keys are kept at least this long (30 days)."""
MAX_KEY_LENGTH: Final = 200
NO_ACCOUNT: Final = 0
"""Scope of keys of operations that have no account yet (account creation, plan changes)."""

_RECORD = (
    idempotency.c.key,
    idempotency.c.operation,
    idempotency.c.fingerprint,
    idempotency.c.response,
)
_LOOKUP = sa.select(*_RECORD).where(
    idempotency.c.account_id == sa.bindparam("account_id"),
    idempotency.c.key.in_(sa.bindparam("keys", expanding=True)),
)
_LOOKUP_ONE = RawStatement(
    sa.select(*_RECORD).where(
        idempotency.c.account_id == sa.bindparam("account_id"),
        idempotency.c.key == sa.bindparam("key"),
    )
)
"""One key: a fixed statement (the expanding IN is compiled again on every call)."""


def is_valid_key(key: object) -> bool:
    """A non-empty string of at most `MAX_KEY_LENGTH` characters without NUL characters or
    lone surrogates."""
    return (
        isinstance(key, str)
        and 0 < len(key) <= MAX_KEY_LENGTH
        and "\x00" not in key
        and encodes_as_utf8(key)
    )


def check_key(key: object) -> None:
    """Refuse an empty or oversized idempotency key, or one holding a NUL character."""
    if not is_valid_key(key):
        raise InvalidRequestError(
            f"an idempotency key is a non-empty string of at most {MAX_KEY_LENGTH} characters "
            "without NUL characters or lone surrogates",
            key=key if isinstance(key, str) else None,
        )


RESERVED_KEY_PREFIXES: Final = (
    "recharge:",
    "rental:",
    "purchase:",
    "purchase-declines:",
    "purchase-intent:",
)
"""The wallet's own key namespaces: an automatic recharge's credit (`recharge:<account>:<n>`), a
number's monthly rental (`rental:<number>:<period>`), a purchase's payment and grant
(`purchase:<account>:<digest>`), its count of declines and the request it tied its key to
before paying. A caller's key may not start with one,
or it could take the key of an internal operation (a recharge would then be paid and never
granted)."""


def reserved_key_refusal(key: object) -> InvalidRequestError | None:
    """The refusal of a caller's key in one of the wallet's own namespaces, else None (a key
    that is not valid text is refused where it is used, by `check_key`)."""
    if not isinstance(key, str):
        return None
    for prefix in RESERVED_KEY_PREFIXES:
        if key.startswith(prefix):
            return InvalidRequestError(
                f"idempotency keys starting with {prefix!r} are reserved for the wallet's own "
                "operations (recharges, rentals, purchases); use a key of your own",
                key=key,
            )
    return None


def check_caller_key(key: object) -> None:
    """Refuse a caller's key in one of the wallet's own namespaces (`reserved_key_refusal`)."""
    refusal = reserved_key_refusal(key)
    if refusal is not None:
        raise refusal


_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_quote = json.encoder.encode_basestring_ascii


def fingerprint(operation: str, params: dict[str, Any]) -> str:
    """A stable hash of what a request asks for; the same key must always ask the same."""
    text = _FINGERPRINT_JSON.encode([operation, params])
    return hashlib.sha256(text.encode()).hexdigest()


def charge_fingerprint(operation: str, amount: int, reference: str | None, lines: Any) -> str:
    """`fingerprint(operation, {"amount", "reference", "lines"})`, the same hash, with the text
    written directly in the common case (an int amount, no lines) since it runs per charge."""
    if lines is not None or type(amount) is not int or not isinstance(reference, str | None):
        return fingerprint(operation, {"amount": amount, "reference": reference, "lines": lines})
    ref = "null" if reference is None else _quote(reference)
    text = f'[{_quote(operation)},{{"amount":{amount},"lines":null,"reference":{ref}}}]'
    return hashlib.sha256(text.encode()).hexdigest()


def forget(conn: sa.Connection, account_id: int, key: str) -> None:
    """Delete the record of ``key`` (a `mark` whose step turned out not to count)."""
    conn.execute(
        sa.delete(idempotency).where(
            idempotency.c.account_id == account_id, idempotency.c.key == key
        )
    )


def lookup(
    conn: sa.Connection, account_id: int, keys: list[str]
) -> dict[str, tuple[str, str, str]]:
    """Stored records for ``keys`` of one account: key -> (operation, fingerprint, response)."""
    if not keys:
        return {}
    if len(keys) == 1:
        rows: Any = _LOOKUP_ONE.rows(conn, {"account_id": account_id, "key": keys[0]})
    else:
        rows = conn.execute(_LOOKUP, {"account_id": account_id, "keys": keys})
    return {r.key: (r.operation, r.fingerprint, r.response) for r in rows}


def mark(
    conn: sa.Connection,
    account_id: int,
    key: str,
    operation: str,
    fingerprint_: str,
    now: int,
    response: str = "{}",
) -> None:
    """Store (or, for a key marked before, re-point to this request) a record that carries no
    answer, or a small state in ``response``: a step a later retry of the request must know
    was taken (a purchase that was allowed and went to the provider; how many times a
    purchase was declined). Committed with ``conn``'s transaction."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        idempotency
    )
    row = {
        "account_id": account_id,
        "key": key,
        "operation": operation,
        "fingerprint": fingerprint_,
        "response": response,
        "created_at": now,
    }
    conn.execute(
        insert.values(row).on_conflict_do_update(
            index_elements=[idempotency.c.account_id, idempotency.c.key],
            set_={"fingerprint": insert.excluded.fingerprint, "response": insert.excluded.response},
        )
    )


def replay(
    record: tuple[str, str, str] | None, key: str, operation: str, fingerprint_: str
) -> str | None:
    """The stored response when ``record`` matches this request, None when there is no record;
    raises `IdempotencyConflictError` when the key was used for a different request."""
    if record is None:
        return None
    stored_operation, stored_fingerprint, response = record
    if stored_operation != operation or stored_fingerprint != fingerprint_:
        raise IdempotencyConflictError(
            f"idempotency key {key!r} was already used for a different {stored_operation} "
            "request; use a new key for a new request",
            key=key,
        )
    return response


def purge(
    conn: sa.Connection,
    now: int,
    retention: int = RETENTION_MICROS,
    *,
    limit: int | None = None,
) -> int:
    """Delete records older than ``retention`` (never less than 30 days), the oldest ``limit``
    of them when given (a caller purging a backlog commits between batches); how many."""
    return purge_older(conn, idempotency, now - max(retention, RETENTION_MICROS), limit)
