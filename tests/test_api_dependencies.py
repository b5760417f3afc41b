"""The API's dependencies never hop to the thread pool: FastAPI runs a plain `def` dependency
in a worker thread, which on the send path cost about a tenth of the server's throughput."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from talktime.api import create_app
from talktime.config import Settings


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _is_async(call: Any) -> bool:
    """A coroutine function, or an instance whose `__call__` is one (`HTTPBearer`)."""
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def test_every_dependency_of_every_route_is_async_so_none_runs_in_the_thread_pool(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    # FastAPI 0.165 keeps included routers as such: their routes come out of the contexts
    routes = [
        ctx.original_route
        for ctx in iter_route_contexts(app.routes)
        if isinstance(ctx.original_route, APIRoute)
    ]
    assert any(r.path == "/v1/messages" for r in routes)
    calls = [
        (route.path, sub.call)
        for route in routes
        for sub in _dependencies(route.dependant)
        if sub.call is not None
    ]
    calls += [("app", d.dependency) for d in app.router.dependencies if d.dependency]
    names = {getattr(call, "__name__", "") for _, call in calls}
    assert {"account_id", "admin", "principal", "one_value_per_query_parameter"} <= names
    sync = sorted(f"{path}: {call!r}" for path, call in calls if not _is_async(call))
    assert sync == []
