"""Request dependencies shared by the routes: the database engine, the idempotency key and the
one-value-per-query-parameter rule.

All are coroutines: they do no I/O, so FastAPI runs them on the event loop instead of sending
each to the thread pool."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

import sqlalchemy as sa
from fastapi import Depends, Header, Request

from talktime.service.errors import InvalidRequestError


async def engine(request: Request) -> sa.Engine:
    """The app's database engine."""
    eng: sa.Engine = request.app.state.engine
    return eng


KEY_MAX_LENGTH = 160
"""The longest Idempotency-Key header accepted (a longer one is a 422 naming the header)."""


async def idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required on money-moving requests: a replay returns the original "
            "response; the same key with another request is refused (409).",
            # documented, not validated here: FastAPI's own 422 named no top-level `field`
            json_schema_extra={"maxLength": KEY_MAX_LENGTH},
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
    if len(key) > KEY_MAX_LENGTH:
        raise InvalidRequestError(
            f"An Idempotency-Key holds at most {KEY_MAX_LENGTH} characters; this one has "
            f"{len(key)} (send e.g. a UUID).",
            field="Idempotency-Key",
        )
    if any(c in key for c in _NOT_IN_HEADERS):
        # HTTP never carries them (RFC 9110 5.5), so no client's key holds one; the admin
        # routes keep their keys behind a line feed, apart from the account's clients' keys
        raise InvalidRequestError(
            "An Idempotency-Key cannot hold a line break or a NUL character; send printable "
            "characters (e.g. a UUID).",
            field="Idempotency-Key",
        )
    return key


_NOT_IN_HEADERS = ("\r", "\n", "\x00")


Engine = Annotated[sa.Engine, Depends(engine)]
IdempotencyKey = Annotated[str, Depends(idempotency_key)]


_SINGLE_VALUED: dict[int, frozenset[str]] = {}


def _takes_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_takes_many(arg) for arg in get_args(annotation))
    return origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset)


def _single_valued(route: Any) -> frozenset[str]:
    """The query parameters of ``route`` (its dependencies' included) that take one value."""
    known = _SINGLE_VALUED.get(id(route))
    if known is None:
        names: set[str] = set()
        pending = [route.dependant]
        while pending:  # the route's own parameters and its dependencies'
            dependant = pending.pop()
            pending.extend(dependant.dependencies)
            names.update(
                p.alias for p in dependant.query_params if not _takes_many(p.field_info.annotation)
            )
        known = frozenset(names)
        _SINGLE_VALUED[id(route)] = known
    return known


async def one_value_per_query_parameter(request: Request) -> None:
    """Refuse a query parameter given twice where it takes one value: FastAPI would silently
    use the last (``?kind=usage&kind=grant`` listed grants only, ``?limit=1&limit=500`` 500)."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if getattr(route, "dependant", None) is None:
        return
    single = _single_valued(route)
    for name in single:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise InvalidRequestError(
                f"The query parameter `{name}` is given {len(values)} times "
                f"({', '.join(repr(v) for v in values)}); give it once.",
                field=name,
            )
