"""The OpenAPI document, made to tell the truth about errors: every 4xx/5xx response of every
operation is documented as an `application/problem+json` Problem, which is what the error
handlers send (FastAPI would otherwise document its own 422 shape as `application/json`);
a route's own error document (`/healthz`'s 503 Health) is kept. Also documented: the 503 of
every operation that reads the database, the required Idempotency-Key header, and the
`X-Request-ID`, `Idempotent-Replayed` and (on a 401) `WWW-Authenticate` response headers.
The text of a message or an SMS quote publishes the configured `sms_max_text_chars` as its
`maxLength`, the limit the server enforces."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from talktime.api.models import (
    CONFIGURED_MAX_LENGTH,
    PROBLEM_JSON,
    REPLAYED_HEADER,
    WWW_AUTHENTICATE,
    Problem,
)
from talktime.config import Settings

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_ERRORS = ("#/components/schemas/Problem", "#/components/schemas/HTTPValidationError")
"""Error schemas that the handlers never send as is: documented as the problem they send."""

IDEMPOTENCY_HEADER = "Idempotency-Key"
_DATABASE_503 = (
    "The database is unreachable (`database_unavailable`) or not migrated "
    "(`database_not_migrated`), or the service is too busy (`service_busy`); nothing was done: "
    "retry shortly (a money-moving request with the same Idempotency-Key)"
)
_REQUEST_ID = {
    "X-Request-ID": {
        "description": "The request's id (the client's own if it sent a sane one); every "
        "problem document carries it as `request_id`.",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
    }
}
_REPLAYED = {
    REPLAYED_HEADER: {
        "description": "`true` on a response replayed for an Idempotency-Key that had already "
        "answered (the body is the original's, byte for byte); absent otherwise.",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "The authentication scheme the API takes (RFC 9110 §11.6.1): a bearer "
        "API key.",
        "required": True,
        "schema": {"type": "string", "enum": [WWW_AUTHENTICATE]},
    }
}


_ALWAYS_FOR_INPUT = {
    "422": "Invalid input (also a body that is not valid JSON or not an object); the problem "
    "names the field"
}
_ALWAYS_FOR_BODY = {
    "400": "Bad request: the request cannot be acted on as written",
    "413": "Request body too large",
    "415": "The body is not sent as JSON (Content-Type: application/json)",
}


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("requestBody") or operation.get("parameters"))


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with a cached generator that documents errors as problems."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in problem.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault("Problem", problem)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                for status, response in responses.items():
                    if status[:1] in ("4", "5") and _sends_problem(response):
                        response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
                wanted = dict(_ALWAYS_FOR_INPUT if _takes_input(operation) else {})
                if operation.get("requestBody"):
                    wanted.update(_ALWAYS_FOR_BODY)
                if operation.get("security"):  # the API key is looked up in the database
                    wanted["503"] = _DATABASE_503
                for status, description in wanted.items():
                    if status == "503" and status in responses:  # POST /v1/credits' provider
                        responses[status]["description"] += (
                            f"; or: {description[0].lower()}{description[1:]}"
                        )
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
                        },
                    )
                _document_headers(operation)
        _drop_unused(schema)
        _tuple_items(schema)
        _integer_bounds(schema)
        _configured_max_lengths(schema, app.state.settings)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _sends_problem(response: dict[str, Any]) -> bool:
    """False for an error response a route documents with its own model (`/healthz`'s 503)."""
    content = response.get("content") or {}
    refs = [media.get("schema", {}).get("$ref") for media in content.values()]
    return not refs or all(ref in (None, *_FASTAPI_ERRORS) for ref in refs)


def _document_headers(operation: dict[str, Any]) -> None:
    """The Idempotency-Key header is required where it is read (its absence is a 422), and
    every response says which headers it carries (a 401 its `WWW-Authenticate`)."""
    idempotent = False
    for parameter in operation.get("parameters", ()):
        if parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_HEADER:
            idempotent = True
            parameter["required"] = True
            parameter["schema"] = {
                "type": "string",
                "minLength": 1,
                "maxLength": 160,
                "pattern": r"\S",
                "title": IDEMPOTENCY_HEADER,
            }
    for status, response in operation.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers.update(_REQUEST_ID)
        if idempotent and status[:1] == "2":
            headers.update(_REPLAYED)
        if status == "401":
            headers.update(_CHALLENGE)


def _drop_unused(schema: dict[str, Any]) -> None:
    """Remove FastAPI's validation-error schemas (never sent) once no response refers to them."""
    if "#/components/schemas/HTTPValidationError" not in repr(schema.get("paths")):
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def _tuple_items(node: Any) -> None:
    """Describe a fixed-length tuple of one item type (`tuple[str, str]`) as an array of that
    type with min/max items, and any other tuple with `prefixItems`: `items: [a, b]` is not
    valid in OpenAPI 3.1, and some tools mishandle `prefixItems`."""
    if isinstance(node, dict):
        items = node.get("prefixItems", node.get("items"))
        if isinstance(items, list) and items:
            node.pop("prefixItems", None)
            node.pop("items", None)
            if all(item == items[0] for item in items):
                node.update(items=items[0], minItems=len(items), maxItems=len(items))
            else:
                node["prefixItems"] = items
        for value in node.values():
            _tuple_items(value)
    elif isinstance(node, list):
        for value in node:
            _tuple_items(value)


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _integer_bounds(node: Any) -> None:
    """Write a whole-number bound as an integer (`604800`, not `604800.0`): FastAPI's schema
    models hold bounds as floats, and the strict integer fields refuse `604800.0`."""
    if isinstance(node, dict):
        for name in _BOUNDS:
            value = node.get(name)
            if isinstance(value, float) and value.is_integer():
                node[name] = int(value)
        for value in node.values():
            _integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _integer_bounds(value)


def _configured_max_lengths(node: Any, settings: Settings) -> None:
    """Publish as `maxLength` the configured value of the setting a schema is marked with
    (`api.models.text_schema(..., setting=...)`), and drop the mark: the model's own bound only
    lets a longer text through to be refused as `text_too_long`."""
    if isinstance(node, dict):
        setting = node.pop(CONFIGURED_MAX_LENGTH, None)
        if setting is not None:
            node["maxLength"] = getattr(settings, setting)
        for value in node.values():
            _configured_max_lengths(value, settings)
    elif isinstance(node, list):
        for value in node:
            _configured_max_lengths(value, settings)
