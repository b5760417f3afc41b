"""The FastAPI application factory: settings, the database engine and every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import talktime
from talktime.api import errors
from talktime.api.routes import health, quotes
from talktime.config import Settings, get_settings
from talktime.store import make_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: the process settings)."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="talktime",
        version=talktime.__version__,
        description="Prepaid usage billing for business calling and SMS.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    errors.install(app)
    app.include_router(health.router)
    app.include_router(quotes.router)
    return app
