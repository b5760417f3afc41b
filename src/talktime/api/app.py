"""The FastAPI application factory: settings, the database engine and every router."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import talktime
from talktime import logs
from talktime.api import deps, errors, openapi
from talktime.api.auth import key_reader_for
from talktime.api.metrics import MetricsMiddleware
from talktime.api.metrics import router as metrics_router
from talktime.api.middleware import HeadMiddleware, RequestContextMiddleware
from talktime.api.pgkeys import async_key_reader_for
from talktime.api.routes import (
    admin,
    balance,
    calls,
    credits,
    health,
    keys,
    messages,
    numbers,
    quotes,
    reports,
    segments,
    users,
    webhooks,
)
from talktime.config import Settings, get_settings
from talktime.ops.metrics import Metrics
from talktime.service import groupcommit
from talktime.store import make_engine
from talktime.web import install as install_web_pages

ADMIN_KEY_MIN_LENGTH = 32
"""An `admin_key` setting shorter than this is warned of at start-up: it opens every account."""


def warn_of_a_short_admin_key(settings: Settings) -> None:
    """Log a warning when the `admin_key` setting is short enough to be guessed (keys made by
    `talktime keys create --admin` carry 256-bit secrets; this setting is whatever was typed)."""
    if settings.admin_key is None or not settings.admin_key.get_secret_value():
        return  # none (an empty one is none too: `api.auth` ignores it)
    length = len(settings.admin_key.get_secret_value())
    if length < ADMIN_KEY_MIN_LENGTH:
        logging.getLogger("talktime.api").warning(
            "the admin_key setting (TALKTIME_ADMIN_KEY) is %d characters: a key that can be "
            "guessed opens every account's data and money; use %d or more random characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or an admin key "
            "from `talktime keys create --admin`, which can also be revoked",
            length,
            ADMIN_KEY_MIN_LENGTH,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: the process settings)."""
    settings = settings or get_settings()
    warn_of_a_short_admin_key(settings)
    engine = make_engine(settings.database_url, settings)
    key_reader = key_reader_for(engine)
    async_key_reader = async_key_reader_for(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if getattr(_app.state, "freeze_gc", False):
            # Everything imported and built at start-up lives as long as the process: out of
            # the collector's generations, so that collections walk only per-request objects.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*SERVED_GC_THRESHOLD)
        yield
        if key_reader is not None:
            key_reader.close()
        if async_key_reader is not None:
            await async_key_reader.close()
        groupcommit.close(engine)
        engine.dispose()

    app = FastAPI(
        title="talktime",
        version=talktime.__version__,
        description="Prepaid usage billing for business calling and SMS.",
        lifespan=lifespan,
        dependencies=[Depends(deps.one_value_per_query_parameter)],
        # `/v1/balance/` is a 404 problem like any unknown path, not a bare 307 to the path
        # without the slash (a redirect the OpenAPI document does not declare)
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.key_reader = key_reader
    app.state.async_key_reader = async_key_reader
    errors.install(app)
    openapi.install(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(messages.router)
    app.include_router(calls.router)
    app.include_router(balance.router)
    app.include_router(credits.router)
    app.include_router(numbers.router)
    app.include_router(users.router)
    app.include_router(keys.router)
    app.include_router(admin.router)
    app.include_router(segments.router)
    app.include_router(quotes.router)
    app.include_router(webhooks.router)
    app.include_router(reports.router)
    app.state.metrics = Metrics(engine)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(HeadMiddleware)  # added last: the outermost
    app.include_router(metrics_router)
    install_web_pages(app)
    return app


SERVED_GC_THRESHOLD = (20_000, 20, 20)
"""The served process's collector thresholds (Python's are 700, 10, 10). With the default a
young collection ran about every seven sends (in-process, client included); with these, about
every two hundred. Send-SMS on SQLite, four interleaved pairs: 1,885-2,030 -> 2,054-2,101
req/s."""


def create_served_app() -> FastAPI:
    """The app as `talktime serve` runs it: `create_app` with the start-up heap frozen for the
    garbage collector (`gc.freeze`) and its thresholds raised (`SERVED_GC_THRESHOLD`), which
    an app built and dropped by tests must not do to their process."""
    app = create_app()
    app.state.freeze_gc = True
    # `serve --workers N` starts N processes that import this factory and never run the CLI's
    # own `logs.configure`: each configures its logging here (until 1 Dec their records were
    # Python's bare last-resort lines, not JSON and without request ids)
    settings = app.state.settings
    logs.configure(settings.log_format, settings.log_level)
    return app
