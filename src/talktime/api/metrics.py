"""`GET /metrics` in the Prometheus text format, and the ASGI middleware that counts requests,
charges and refusals (by the `code` of each problem document) for it."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talktime.api.models import REPLAYED_HEADER
from talktime.ops.metrics import Metrics

router = APIRouter(tags=["operations"])

PROBLEM = b"application/problem+json"
REPLAYED = REPLAYED_HEADER.lower().encode()
MAX_PROBLEM_BYTES = 64 * 1024


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, charges, refusals by code, job queue and lag, webhooks."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Time each request and read the `code` of problem responses, then count it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        problem: bytearray | None = None
        replayed = False

        async def capture(message: Message) -> None:
            nonlocal status, problem, replayed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = dict(message.get("headers", ()))
                replayed = headers.get(REPLAYED) == b"true"
                if headers.get(b"content-type", b"").startswith(PROBLEM):
                    problem = bytearray()
            elif (
                message["type"] == "http.response.body"
                and problem is not None
                and len(problem) < MAX_PROBLEM_BYTES
            ):
                problem.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                scope.get("method", ""),
                template,
                status,
                time.perf_counter() - started,
                _code(problem) if problem is not None else None,
                moved_money=not replayed,
            )


def _code(body: bytearray) -> str:
    try:
        code = json.loads(bytes(body)).get("code")
    except (ValueError, AttributeError):
        return "unknown"
    return str(code) if isinstance(code, str) and len(code) <= 64 else "unknown"
