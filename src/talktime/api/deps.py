"""Request dependencies shared by the routes: the database engine and the idempotency key.

Both are coroutines: they do no I/O, so FastAPI runs them on the event loop instead of sending
each to the thread pool."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Header, Request

from talktime.service.errors import InvalidRequestError


async def engine(request: Request) -> sa.Engine:
    """The app's database engine."""
    eng: sa.Engine = request.app.state.engine
    return eng


async def idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required on money-moving requests: a replay returns the original "
            "response; the same key with another request is refused (409).",
            max_length=160,
        ),
    ] = None,
) -> str:
    """The request's Idempotency-Key header (required, and only one: with two different keys
    the request would silently have run under the first)."""
    given = request.headers.getlist("idempotency-key")
    if len(set(given)) > 1:
        raise InvalidRequestError(
            f"Send one Idempotency-Key header; this request has {len(given)} with different "
            "values, so it is not clear which one the request may be replayed under.",
            field="Idempotency-Key",
        )
    if not key or not key.strip():
        raise InvalidRequestError(
            "Send an Idempotency-Key header (any unique string, e.g. a UUID) with this request.",
            field="Idempotency-Key",
        )
    return key


Engine = Annotated[sa.Engine, Depends(engine)]
IdempotencyKey = Annotated[str, Depends(idempotency_key)]
