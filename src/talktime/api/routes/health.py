"""`GET /healthz`: is the service up, which database does it use, at which migration."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import talktime
from talktime.store import backend_name, current_revision, head_revision

router = APIRouter(tags=["health"])


class Database(BaseModel):
    backend: str
    revision: str | None
    head: str | None
    up_to_date: bool


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Database


@router.get(
    "/healthz",
    response_model=Health,
    responses={
        503: {
            "model": Health,
            "description": "Degraded: the database does not answer or is not migrated",
        }
    },
)
def healthz(request: Request) -> JSONResponse:
    """Liveness and readiness: 200 when the database answers and is migrated, else 503."""
    engine: sa.Engine = request.app.state.engine
    head = head_revision()
    try:
        revision = current_revision(engine)
    except sa.exc.SQLAlchemyError:
        revision = None
    ok = revision is not None and revision == head
    body = Health(
        status="ok" if ok else "degraded",
        version=talktime.__version__,
        database=Database(
            backend=backend_name(engine.url), revision=revision, head=head, up_to_date=ok
        ),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
