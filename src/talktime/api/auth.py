"""API-key authentication: `Authorization: Bearer tt_...` -> the principal a request acts as.

Account keys act for their own account only; admin keys (from `api_keys` or `TALKTIME_ADMIN_KEY`)
may use the admin endpoints. A missing or bad key is a 401 problem, never a hint of which part
was wrong.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from talktime.errors import TalktimeError
from talktime.keys import InvalidApiKeyError, Principal, authenticate

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tt_...`")


class AdminRequiredError(TalktimeError):
    code = "admin_required"
    status = 403
    title = "Admin key required"


class AccountKeyRequiredError(TalktimeError):
    code = "account_key_required"
    status = 403
    title = "Account key required"


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The principal behind the request's API key (401 if none is valid).

    The lookup runs in the thread pool, never on the event loop: a SQLite read can meet the
    busy handler (whose sleeps would stall every request of the process). On PostgreSQL it
    runs in autocommit: no BEGIN/ROLLBACK round trips around one SELECT."""
    if credentials is None or not credentials.credentials:
        raise InvalidApiKeyError("Send an API key: `Authorization: Bearer tt_...`.")
    admin = request.app.state.settings.admin_key
    engine: sa.Engine = request.app.state.engine
    token = credentials.credentials
    admin_token = admin.get_secret_value() if admin else None
    return await anyio.to_thread.run_sync(_lookup, engine, token, admin_token)


def _lookup(engine: sa.Engine, token: str, admin_token: str | None) -> Principal:
    options: dict[str, str] = (
        {"sqlite_begin": "DEFERRED"}
        if engine.dialect.name == "sqlite"
        else {"isolation_level": "AUTOCOMMIT"}
    )
    with engine.connect().execution_options(**options) as conn:
        return authenticate(conn, token, admin_token)


def account_id(who: Annotated[Principal, Depends(principal)]) -> int:
    """The account an account key acts for (admin keys use the admin endpoints)."""
    if who.account_id is None:
        raise AccountKeyRequiredError(
            "This endpoint acts for one account: use that account's API key."
        )
    return who.account_id


def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """Only an admin key passes."""
    if not who.admin:
        raise AdminRequiredError("This endpoint needs an admin API key.")
    return who


AccountId = Annotated[int, Depends(account_id)]
Admin = Annotated[Principal, Depends(admin)]
