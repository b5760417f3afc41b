"""The OpenAPI document, made to tell the truth about errors: every 4xx/5xx response of every
operation is documented as an `application/problem+json` Problem, which is what the error
handlers send (FastAPI would otherwise document its own 422 shape as `application/json`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from talktime.api.models import PROBLEM_JSON, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


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
        components.setdefault("Problem", Problem.model_json_schema(ref_template="{model}"))
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                for status, response in responses.items():
                    if status[:1] in ("4", "5"):
                        response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
                wanted = dict(_ALWAYS_FOR_INPUT if _takes_input(operation) else {})
                if operation.get("requestBody"):
                    wanted.update(_ALWAYS_FOR_BODY)
                for status, description in wanted.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
                        },
                    )
        _tuple_items(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
