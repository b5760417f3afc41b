"""RFC 9457 problem documents (`application/problem+json`) for every refusal."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any, get_args, get_origin

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match

from talktime.api.middleware import current_request_id, is_json_media
from talktime.api.models import WWW_AUTHENTICATE
from talktime.errors import TalktimeError
from talktime.store.migrate import DatabaseNotMigratedError

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("talktime.api")


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response; `type` is a stable URN built from the code.

    Every problem carries the id of the request it answers (`request_id`); a 401 carries
    `WWW-Authenticate` (`models.WWW_AUTHENTICATE`).
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
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _with_errors(exc: TalktimeError) -> dict[str, Any]:
    """The refusal's extension members; one that names its `field` also carries the `errors`
    list a validation 422 has (`[{"field": ..., "message": <the sentence>}]`), so a client
    reads the input at fault the same way from either."""
    field = exc.extra.get("field")
    if field is None or "errors" in exc.extra:
        return exc.extra
    return {**exc.extra, "errors": [{"field": field, "message": exc.detail}]}


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _field_of(loc: Any) -> str:
    """A validation error's input as the API names it: the body path (`legs.0.to`), or the
    path or query parameter's own name (`kind`, where FastAPI says `query.kind`; the service's
    refusals of the same parameters said `kind`)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts)


def _unreadable_body(cause: BaseException | None) -> str:
    """Why FastAPI could not read a JSON body, from the exception behind its 400 (a number of
    over 4,300 digits was called "not UTF-8 text")."""
    if isinstance(cause, RecursionError):
        return "it nests arrays or objects too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "a number in it has more than 4,300 digits"
    return "it could not be read whole"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, HEAD after GET (`HeadMiddleware`
    answers it wherever GET is served). Starlette's own 405 names only the first route that
    matched the path, so `Allow` missed GET on `/v1/keys` (it said POST)."""
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    if "GET" in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


def install(app: FastAPI) -> None:
    """Register the handlers that turn refusals and invalid input into problem documents."""

    @app.exception_handler(TalktimeError)
    async def _refusal(request: Request, exc: TalktimeError) -> JSONResponse:
        if isinstance(exc, DatabaseNotMigratedError):
            raise exc  # the middleware's answer, which speaks to the operator, not to embedders
        if exc.status >= 500:  # our fault or a dependency's: the operator must hear of it
            # its sentence, which the client reads too; no traceback (a chained exception's
            # text, from a driver or a provider, could carry what must not be logged)
            log.error(
                "%s answered %s: %s",
                exc.code,
                exc.status,
                exc.detail,
                extra={
                    "request_id": current_request_id(),
                    "code": exc.code,
                    "status": exc.status,
                    "path": request.url.path,
                    # the refusal's facts (an account, a provider's payment key): what an
                    # operator needs to find the request's traces
                    "facts": exc.extra,
                },
            )
        return problem(exc.status, exc.code, exc.title, exc.detail, **_with_errors(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        title = code.replace("_", " ").capitalize()
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer to a JSON body it could not decode (it names no cause): not
            # UTF-8, nested deeper than the decoder recurses, a number past Python's limit of
            # digits, or a body that never arrived whole: malformed JSON like any other
            why = _unreadable_body(exc.__cause__)
            return problem(
                422,
                "invalid_request",
                "Invalid request",
                f"The request body is not valid JSON: {why}.",
            )
        allow = _allowed_methods(request) if exc.status_code == 405 else []
        if exc.status_code == 404 and detail == "Not Found":  # the router's: no such path
            detail = f"There is no {request.url.path}; the API's paths are listed at /docs."
        elif allow:
            detail = (
                f"{request.method} is not allowed on {request.url.path}; use {', '.join(allow)}."
            )
        response = problem(exc.status_code, code, title, detail)
        if exc.headers:
            response.headers.update(exc.headers)
        if allow:
            response.headers["Allow"] = ", ".join(allow)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        errors = [
            {
                "field": _field_of(err.get("loc", ())),
                # our validators' own sentences, without pydantic's "Value error, " label
                "message": _extra_field_message(request, err)
                or str(err.get("msg", "invalid")).removeprefix("Value error, ") + _plus_hint(err),
            }
            for err in raw
        ]
        whole = _whole_body_problem(request, raw[0]) if raw else None
        if whole is not None:
            status, code, title, detail = whole
            if status != 422:
                return problem(status, code, title, detail)
            errors[0] = {"field": "", "message": detail}
            return problem(422, code, title, detail, errors=errors)
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field'] or 'request'}: {first['message']}"
        # the first input at fault as `field` too, as a refusal raised past validation has it
        named = {"field": first["field"]} if first["field"] else {}
        return problem(422, "invalid_request", "Invalid request", detail, **named, errors=errors)


def _extra_field_message(request: Request, error: Any) -> str | None:
    """For a body member the request does not take: a sentence naming the members it does
    take (pydantic only says "Extra inputs are not permitted"). None for any other error, or
    when the body's model cannot be followed to that member."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") != "extra_forbidden" or len(loc) < 2 or loc[0] != "body":
        return None
    body_field = getattr(request.scope.get("route"), "body_field", None)
    model = _model_at(
        getattr(getattr(body_field, "field_info", None), "annotation", None), loc[1:-1]
    )
    if model is None:
        return None
    names = [field.alias or name for name, field in model.model_fields.items()]
    if not names:
        return "not a member of this object, which takes none"
    return f"not a member of this object, which takes {', '.join(names)}"


def _model_at(annotation: Any, path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model found by following ``path`` (member names and list indexes) from
    ``annotation`` (a model, a list of them, or an optional one)."""
    for step in (*path, None):
        while not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if isinstance(step, int) and get_origin(annotation) is list and args:
                annotation, step = args[0], -1  # the index is taken: go on with the item
                continue
            if len(args) != 1:  # not a model, or a union of several: give up
                return None
            annotation = args[0]
        if step is None:
            return annotation
        if step == -1:
            continue
        field = next((f for n, f in annotation.model_fields.items() if step in (n, f.alias)), None)
        if field is None:
            return None
        annotation = field.annotation
    return None


_SPACED_OFFSET = re.compile(r"\d ([0-9]{2}:?[0-9]{2})\Z")


def _plus_hint(error: Any) -> str:
    """A query time whose `+hh:mm` offset arrived as a space (an unencoded '+' in a URL means a
    space): say so, instead of only "unexpected extra characters"."""
    value = error.get("input")
    loc = error.get("loc", ())
    if loc and loc[0] == "query" and isinstance(value, str) and _SPACED_OFFSET.search(value):
        return " (a '+' in a URL reads as a space: write the offset's '+' as %2B)"
    return ""


def _whole_body_problem(request: Request, error: Any) -> tuple[int, str, str, str] | None:
    """(status, code, title, sentence) when the body as a whole is unusable: not JSON by its
    Content-Type (415), not valid JSON, missing, or not a JSON object (422). FastAPI's own words
    named no field ("request: Input should be a valid dictionary...") or a false one (the
    character offset of a syntax error as the field "8")."""
    loc = tuple(error.get("loc", ()))
    if not loc or loc[0] != "body":
        return None
    kind = error.get("type", "")
    if kind == "json_invalid":
        reason = str((error.get("ctx") or {}).get("error", "JSON decode error"))
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        return (
            422,
            "invalid_request",
            "Invalid request",
            f"The request body is not valid JSON: {reason}{where}.",
        )
    if len(loc) != 1:
        return None
    content_type = request.headers.get("content-type", "")
    if kind != "missing" and not is_json_media(content_type):
        given = f"it was {content_type!r}" if content_type else "it was missing"
        return (
            415,
            "unsupported_media_type",
            "Unsupported media type",
            f"Send the body as JSON with the header Content-Type: application/json ({given}).",
        )
    if kind == "missing":
        return (
            422,
            "invalid_request",
            "Invalid request",
            "The request body is missing; send a JSON object.",
        )
    found = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    shape = found.get(type(error.get("input")), "a number")
    return (
        422,
        "invalid_request",
        "Invalid request",
        f"The request body must be a JSON object, not {shape}.",
    )
