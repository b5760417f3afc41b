"""Account lookups the API needs before it acts: existence and subscription state."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from talktime import policy
from talktime.service.errors import NotFoundError
from talktime.store.wallet_tables import accounts


@dataclass(frozen=True)
class AccountState:
    """What policy needs to know about an account."""

    id: int
    status: str
    currency: str
    plan: str


def require_account(conn: sa.Connection, account_id: int) -> AccountState:
    """The account, or 404."""
    row = conn.execute(
        sa.select(accounts.c.id, accounts.c.status, accounts.c.currency, accounts.c.plan).where(
            accounts.c.id == account_id
        )
    ).first()
    if row is None:
        raise NotFoundError(f"No account {account_id}.")
    return AccountState(id=int(row.id), status=row.status, currency=row.currency, plan=row.plan)


def require_existing(engine: sa.Engine, account_id: int) -> None:
    """404 unless the account exists: `require_account` in a read of its own (an admin route
    checks the account it names before its work)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        require_account(conn, account_id)


def require_active(engine: sa.Engine, account_id: int) -> None:
    """Refuse (403 `subscription_inactive`) a change an account's key asks for unless its
    subscription is active: new users and keys, user changes, the monthly limit, turning
    auto-recharge on. Reads, quotes, revoking a key, releasing a number and turning
    auto-recharge off stay open, so a lapsed customer can see and stop what costs money."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        state = require_account(conn, account_id)  # a read: never queue for the write lock
    policy.require_active_subscription(state.status)
