"""RFC 9457 problem documents (`application/problem+json`) for every refusal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from talktime.api.middleware import current_request_id
from talktime.errors import TalktimeError

PROBLEM_JSON = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response; `type` is a stable URN built from the code.

    Every problem carries the id of the request it answers (`request_id`).
    """
    body = {
        "type": f"urn:talktime:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **jsonable_encoder(extra, custom_encoder={Decimal: str}),
        "request_id": current_request_id(),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    """Register the handlers that turn refusals and invalid input into problem documents."""

    @app.exception_handler(TalktimeError)
    async def _refusal(_request: Request, exc: TalktimeError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        title = code.replace("_", " ").capitalize()
        response = problem(exc.status_code, code, title, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": err.get("msg", "invalid"),
            }
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field'] or 'request'}: {first['message']}"
        return problem(422, "invalid_request", "Invalid request", detail, errors=errors)
