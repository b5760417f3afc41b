"""The web routes: `/` (to /usage), the Usage page, the Segment Calculator and the one JSON
endpoint the pages need that the API does not give: the calculator's public cost estimate.

`install(app)` mounts the static assets at `/static` and adds these routes, all left out of the
OpenAPI schema: they serve people, not API clients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool
from starlette.responses import Response
from starlette.types import Scope

import talktime
from talktime.config import MAX_SMS_TEXT_CHARS, Settings
from talktime.rating import RateCard, load_card
from talktime.service import messages
from talktime.web import estimate

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


MAX_TEXT = MAX_SMS_TEXT_CHARS

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
"""Only this server's own files run or style the pages: no inline script, event handler or style
attribute (the templates have none; the scripts build the chart's SVG with presentation
attributes, which are not styles), no framing (clickjacking of "Buy credits"), and fetches only
to this origin, so an injected script could not send the Usage page's API key elsewhere."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
}
"""Sent with every page and asset. `X-Content-Type-Options: nosniff` is on every response of the
app (`api.middleware.RequestContextMiddleware`), these included."""


def _a_str(value: Any) -> str:
    """A JSON string as decoded, lone surrogates included (a ``str`` field refused "\\ud83d" as
    a bare `invalid_request`; the SMS code refuses it as `invalid_text` with its position)."""
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    if len(value) > MAX_TEXT:
        raise ValueError(f"String should have at most {MAX_TEXT} characters")
    return value


class EstimateRequest(BaseModel):
    """What the Segment Calculator asks to price."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[Any, AfterValidator(_a_str)]
    smart_encoding: StrictBool = False
    language: Literal["tr", "es", "pt"] | None = None
    country: str = Field("US", pattern=r"^[A-Z]{2}$")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def active_card(settings: Settings) -> RateCard:
    """The configured rate card's version in force today."""
    return load_card(settings.rate_card, directory=settings.rate_cards_dir)


def _page(request: Request, name: str, page: str, **context: Any) -> HTMLResponse:
    context = {"page": page, "version": talktime.__version__, **context}
    response = templates.TemplateResponse(request, name, context)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/")
def home() -> RedirectResponse:
    """The Usage page is home."""
    return RedirectResponse("/usage", status_code=307)


@router.get("/usage", name="usage_page")
def usage_page(request: Request) -> HTMLResponse:
    """The account's Usage page (it signs in with an API key in the browser)."""
    return _page(request, "usage.html", "usage")


@router.get("/calculator", name="calculator_page")
def calculator_page(request: Request) -> HTMLResponse:
    """The public Segment Calculator."""
    settings = _settings(request)
    card = active_card(settings)
    return _page(
        request,
        "calculator.html",
        "calculator",
        countries=estimate.countries(card),
        card=card,
        # browsers count `maxlength` in UTF-16 code units and cut what is longer; the limit is
        # in characters, each at most two units, so the box admits every text the API takes
        max_units=2 * settings.sms_max_text_chars,
    )


@router.post("/calculator/estimate")
def calculator_estimate(body: EstimateRequest, request: Request) -> dict[str, Any]:
    """The estimated cost of an outbound SMS of the text to the country (public, no key)."""
    settings = _settings(request)
    # the text rules of a send and of a quote, with their codes and sentences: no estimate of a
    # message that no send would take
    messages.check_outgoing_text(body.text, settings, smart_encoding=body.smart_encoding)
    return estimate.estimate(
        active_card(settings),
        body.text,
        body.country,
        smart_encoding=body.smart_encoding,
        language=body.language,
    )


class Assets(StaticFiles):
    """The pages' assets, each answered with `Cache-Control: no-cache`: a browser keeps its copy
    but asks again (a 304 by ETag when unchanged). Without the header browsers cache a file by
    heuristic, a tenth of its age since Last-Modified, so after an upgrade a page could run days
    with the old script against the new API. Each file is sent with the pages' security headers
    (an asset opened on its own is a document too)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = "no-cache"
        return response


def install(app: FastAPI) -> None:
    """Serve the pages and their assets from ``app``."""
    app.mount("/static", Assets(directory=HERE / "static"), name="web-static")
    app.include_router(router)
