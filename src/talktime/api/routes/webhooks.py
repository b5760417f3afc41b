"""Webhook endpoints of the caller's account: create, list, change, rotate the secret, delete,
see deliveries with their attempt log, and redeliver."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from talktime.api.auth import AccountId
from talktime.api.models import RowId, Time, problems
from talktime.config import Settings
from talktime.ids import MAX_ID
from talktime.ops import webhooks
from talktime.ops.clock import from_datetime

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

EndpointId = Annotated[str, Path(max_length=40, pattern=r"^we_[0-9a-f]+$")]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, examples=["https://example.com/talktime/hooks"])
    event_types: list[str] = Field(
        default_factory=lambda: ["*"], max_length=50, description='event types, or ["*"] for all'
    )
    description: str = Field("", max_length=500)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = Field(None, max_length=50)
    description: str | None = Field(None, max_length=500)
    enabled: StrictBool | None = None


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    failure_count: int
    disabled_reason: str | None
    created_at: str | None


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="`whsec_...`: shown only at creation and rotation")


class Attempt(BaseModel):
    attempt: int
    at: str | None
    outcome: str = Field(description="ok, http_error, timeout, network_error or blocked")
    response_code: int | None
    latency_ms: float
    error: str | None


class Delivery(BaseModel):
    id: int
    event_id: str = Field(description="the `webhook-id` header: dedupe on it")
    event_type: str
    state: Literal["pending", "delivered", "failed", "skipped"] = Field(
        description="`pending` (an attempt is queued), `delivered`, `failed` (gave up), or "
        "`skipped` (the event came while the endpoint was disabled: never attempted; "
        "redeliver it once the endpoint is enabled)"
    )
    attempts: int
    next_attempt_at: str | None
    delivered_at: str | None
    created_at: str | None
    attempt_log: list[Attempt]


def _ctx(request: Request) -> tuple[sa.Engine, Settings]:
    return request.app.state.engine, request.app.state.settings


@router.post(
    "/endpoints", status_code=201, response_model=EndpointWithSecret, responses=problems(403, 409)
)
def create_endpoint(body: EndpointIn, account: AccountId, request: Request) -> dict[str, Any]:
    """Register a URL for the account's events; the answer carries the signing secret once."""
    engine, settings = _ctx(request)
    endpoint = webhooks.create_endpoint(
        engine, settings, account, body.url, body.event_types, body.description
    )
    return endpoint.to_dict(with_secret=True)


@router.get("/endpoints", response_model=list[EndpointOut], responses=problems(403))
def list_endpoints(account: AccountId, request: Request) -> list[dict[str, Any]]:
    """The account's webhook endpoints."""
    engine, _ = _ctx(request)
    return [e.to_dict() for e in webhooks.list_endpoints(engine, account)]


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, responses=problems(403, 404))
def get_endpoint(endpoint_id: EndpointId, account: AccountId, request: Request) -> dict[str, Any]:
    """One endpoint."""
    engine, _ = _ctx(request)
    return webhooks.get_endpoint(engine, account, endpoint_id).to_dict()


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointOut, responses=problems(403, 404))
def update_endpoint(
    endpoint_id: EndpointId, body: EndpointPatch, account: AccountId, request: Request
) -> dict[str, Any]:
    """Change the URL, event types or description; `enabled: true` re-enables a disabled one."""
    engine, settings = _ctx(request)
    return webhooks.update_endpoint(
        engine,
        settings,
        account,
        endpoint_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    ).to_dict()


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    responses=problems(403, 404),
)
def rotate_secret(endpoint_id: EndpointId, account: AccountId, request: Request) -> dict[str, Any]:
    """Replace the signing secret; the new one is shown once."""
    engine, _ = _ctx(request)
    return webhooks.rotate_secret(engine, account, endpoint_id).to_dict(with_secret=True)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=204,
    response_class=Response,
    responses=problems(403, 404),
)
def delete_endpoint(endpoint_id: EndpointId, account: AccountId, request: Request) -> Response:
    """Remove the endpoint with its delivery history."""
    engine, _ = _ctx(request)
    webhooks.delete_endpoint(engine, account, endpoint_id)
    return Response(status_code=204)


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response_model=list[Delivery],
    responses=problems(403, 404),
)
def list_deliveries(
    endpoint_id: EndpointId,
    account: AccountId,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ID,
            description="only deliveries older than this delivery id: the next page starts "
            "before the last id of the previous one",
        ),
    ] = None,
) -> list[dict[str, Any]]:
    """The endpoint's deliveries, newest first, each with its attempt log; `before` pages on."""
    engine, _ = _ctx(request)
    return webhooks.list_deliveries(engine, account, endpoint_id, limit, before=before)


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_class=Response,
    responses=problems(403, 404, 409),
)
def redeliver(delivery_id: RowId, account: AccountId, request: Request) -> Response:
    """Send a delivery again now (with a fresh 24-hour retry window)."""
    engine, _ = _ctx(request)
    webhooks.redeliver(engine, account, delivery_id)
    return Response(status_code=202)


Missed = Literal["skipped", "failed"]
MISSED: tuple[Missed, ...] = ("skipped", "failed")


class RedeliverMissedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    states: list[Missed] = Field(
        default_factory=lambda: list(MISSED),
        min_length=1,
        max_length=2,
        description="which deliveries to send again: `skipped` (events that came while the "
        "endpoint was disabled) and `failed` (given up after 24 hours)",
    )
    since: Time | None = Field(
        None, description="only deliveries created at or after this time (ISO 8601, UTC if no zone)"
    )


class RedeliverMissedOut(BaseModel):
    queued: int = Field(description="deliveries made pending and queued now, oldest first")
    more: bool = Field(
        description="more deliveries match than one call queues (1,000): call again for them"
    )


@router.post(
    "/endpoints/{endpoint_id}/redeliver",
    status_code=202,
    response_model=RedeliverMissedOut,
    responses=problems(403, 404, 409),
)
def redeliver_missed(
    endpoint_id: EndpointId,
    account: AccountId,
    request: Request,
    body: RedeliverMissedIn | None = None,
) -> dict[str, Any]:
    """Send again what the endpoint missed: its `skipped` and `failed` deliveries (or those
    named in `states`), oldest first, each with a fresh 24-hour retry window; the endpoint
    must be enabled (409 otherwise). Pending and delivered ones are left alone."""
    engine, _ = _ctx(request)
    body = body or RedeliverMissedIn()
    since = None if body.since is None else from_datetime(body.since)  # `Time`: aware already
    queued, more = webhooks.redeliver_missed(
        engine, account, endpoint_id, states=list(dict.fromkeys(body.states)), since=since
    )
    return {"queued": queued, "more": more}
