"""Request plumbing as one ASGI middleware: request id, body size limit, NUL characters,
a JSON body's encoding and duplicate members, doubled credentials and content types,
last-resort 500, `X-Content-Type-Options: nosniff`.

Every request gets an `X-Request-ID` (the client's if it sent a sane one, else a new one); it is
echoed on the response, carried in a context variable for problem documents and logs, and an
unexpected exception becomes a logged 500 problem with that id and never a stack trace. A NUL
character (U+0000) in the path, the query or a JSON string of the body is refused with a 422
before the app sees it: PostgreSQL text cannot hold one, and both backends must answer alike.
The body's refusal names the first key or value holding one as `field` and in `errors[]`.
A JSON body must be UTF-8 (a byte order mark is ignored, as RFC 8259 allows) and name each
member of an object once: the JSON decoder would read UTF-16 too and keep the last of two
`"to"`s, so a client could be billed for a request other than the one it meant (RFC 8259 leaves
duplicate names to the implementation; this one refuses them, naming the member).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from typing import Any, Final

import sqlalchemy as sa
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talktime.api.models import WWW_AUTHENTICATE
from talktime.store.engine import damaged_database
from talktime.store.migrate import NOT_MIGRATED, behind, missing_column, missing_table

log = logging.getLogger("talktime.api")

REQUEST_ID_HEADER = "x-request-id"
NOSNIFF = (b"x-content-type-options", b"nosniff")
"""On every response: a browser takes the declared `Content-Type` and never guesses another (a
JSON body echoing a client's text is not run as a script or rendered as HTML). A constant,
appended to the header list the request id is already appended to: no work per request beyond
that, and both paths of `POST /v1/messages` (direct and generic) answer with it alike."""
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}\Z")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    """The id of the request being served ('' outside a request)."""
    return request_id_var.get()


class BodyTooLargeError(Exception):
    """The request body exceeds the configured limit."""


class NulCharacterError(Exception):
    """A JSON string of the request body holds a NUL character."""


# `\u0000` in JSON text is a NUL only when an even number of backslashes (none included)
# comes before it: `\\u0000` is a backslash followed by the letters u0000.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NUL_DETAIL = "NUL characters (U+0000) are not allowed in {where}; remove them and try again."


class _Object(list[tuple[str, Any]]):
    """A JSON object as its members in document order (duplicate keys kept)."""


def nul_field(body: bytes) -> str:
    """The path of the body's first string (key or value, in document order) that holds a NUL,
    written as the other 422s name a field (``user``, ``media.0``); '' when the body is not
    JSON this reads, or is a string itself."""
    try:
        document = json.loads(body, object_pairs_hook=_Object)
    except (ValueError, RecursionError):
        return ""
    stack: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return ".".join(path)
        elif isinstance(value, _Object):
            members: list[tuple[Any, tuple[str, ...]]] = []
            for key, member in value:
                if "\x00" in key:
                    members.append((key, (*path, key)))  # the key itself, at its place
                    break
                members.append((member, (*path, key)))
            stack.extend(reversed(members))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(i))) for i, item in reversed(list(enumerate(value))))
    return ""


def is_json_media(content_type: str) -> bool:
    """Whether a Content-Type announces JSON (`application/json` or `application/*+json`)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class DuplicateMemberError(ValueError):
    """A JSON object of the request body names one member twice."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise DuplicateMemberError
    return document


_UNIQUE_MEMBERS = json.JSONDecoder(object_pairs_hook=_unique_members)
"""Made once: `json.loads` with a hook builds a decoder on every call (half the check's cost)."""


def duplicate_member(body: bytes) -> str:
    """The path of the first member (in document order) that an object of the body names a
    second time, written as the other 422s name a field (``to``, ``legs.1.to``); '' when there
    is none or the body is not JSON this reads."""
    try:
        document = json.loads(body, object_pairs_hook=_Object)
    except (ValueError, RecursionError):
        return ""
    # a name is checked when the walk reaches it, after the values before it: document order
    stack: list[tuple[Any, tuple[str, ...], set[str] | None]] = [(document, (), None)]
    while stack:
        value, path, names = stack.pop()
        if names is not None:  # `value` is a member's name, `path` its object's
            if value in names:
                return ".".join((*path, value))
            names.add(value)
        elif isinstance(value, _Object):
            seen: set[str] = set()
            for key, member in reversed(value):
                stack.append((member, (*path, key), None))
                stack.append((key, path, seen))
        elif isinstance(value, list):
            stack.extend(
                (item, (*path, str(i)), None) for i, item in reversed(list(enumerate(value)))
            )
    return ""


class InvalidBodyError(Exception):
    """The JSON body is refused before the app reads it: (field, sentence)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


UNPARSED: Final = object()
"""`read_json_body`'s document when it left the body to the app (empty, or not JSON it reads)."""
JSON_BODY: Final = "json_body"
"""The key of `scope["state"]` (`request.state.json_body`) holding the body's document once the
middleware read it, so a route reads it instead of decoding the body a second time."""


def read_json_body(body: bytes) -> tuple[Any, InvalidBodyError | None]:
    """(the body's JSON document, or `UNPARSED`; why it is refused here, or None). Refused: not
    UTF-8 (UTF-16 or UTF-32, which the decoder would read), or an object names a member twice.
    Malformed JSON is left to the app (`UNPARSED`, None), whose answer says where it breaks."""
    if not body:
        return UNPARSED, None
    if b"\x00" in body[:4]:  # JSON in UTF-16 or UTF-32 has a NUL among its first four bytes
        encoding = json.detect_encoding(body)
        if encoding not in ("utf-8", "utf-8-sig"):  # else a raw NUL: malformed, the app says
            return UNPARSED, InvalidBodyError(
                "", f"The request body is {encoding.upper()} text; send the JSON as UTF-8."
            )
    try:
        return _UNIQUE_MEMBERS.decode(body.removeprefix(b"\xef\xbb\xbf").decode("utf-8")), None
    except DuplicateMemberError:
        field = duplicate_member(body)
        name = field.rpartition(".")[2]
        return UNPARSED, InvalidBodyError(
            field,
            f"The request body names the member {name!r} more than once"
            + (f" (at {field})" if field != name else "")
            + "; send each member once.",
        )
    except (ValueError, RecursionError):
        return UNPARSED, None


def json_body_refusal(body: bytes) -> InvalidBodyError | None:
    """Why a JSON request body is refused here (`read_json_body`), or None."""
    return read_json_body(body)[1]


def _problem_bytes(
    status: int, code: str, title: str, detail: str, request_id: str, **extra: Any
) -> bytes:
    body = {
        "type": f"urn:talktime:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
        "request_id": request_id,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _schema_behind(scope: Scope) -> bool:
    """Whether the served app's database is at an older revision than this talktime's (asked
    only when a column was missing: then it is the operator's `db upgrade`, not a bug)."""
    app = scope.get("app")
    engine = getattr(getattr(app, "state", None), "engine", None)
    return isinstance(engine, sa.Engine) and behind(engine)


class RequestContextMiddleware:
    """Request id in and out, a body size limit, and the handler of last resort."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = 64 * 1024) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        length: int | None = None
        content_types: list[bytes] = []
        credentials = 0
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif name == b"content-type":
                content_types.append(value)
            elif name == b"authorization":
                credentials += 1
        json_body = len(content_types) == 1 and is_json_media(content_types[0].decode("latin-1"))
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        started = False
        too_large = False
        nul_found = False
        refused: InvalidBodyError | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if too_large or nul_found or refused is not None:
                return  # the app's answer to a refused body is replaced by the refusal
            if message["type"] == "http.response.start":
                started = True
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), id_header, NOSNIFF],
                }
            await send(message)

        async def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> None:
            body = _problem_bytes(status, code, title, detail, request_id, **extra)
            headers = [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if status == 401:
                headers.append((b"www-authenticate", WWW_AUTHENTICATE.encode()))
            await send_with_id(
                {"type": "http.response.start", "status": status, "headers": headers}
            )
            await send_with_id({"type": "http.response.body", "body": body})

        limit = self.max_body_bytes
        received = 0
        chunks: list[bytes] = []

        async def limited_receive() -> Message:
            nonlocal received, too_large, nul_found, refused
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit and not started:
                    too_large = True
                    raise BodyTooLargeError
                chunks.append(chunk)
                if not message.get("more_body", False):
                    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    if b"u0000" in body and _JSON_NUL.search(body) and not started:
                        nul_found = True
                        raise NulCharacterError
                    if json_body and not started:
                        document, refused = read_json_body(body)
                        if refused is not None:
                            raise refused
                        if document is not UNPARSED:
                            scope["state"][JSON_BODY] = document
            return message

        try:
            if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
                where = "the URL" if "\x00" in scope.get("path", "") else "the query"
                await problem(
                    422, "invalid_request", "Invalid request", _NUL_DETAIL.format(where=where)
                )
                return
            if credentials > 1:
                await problem(
                    401,
                    "unauthorized",
                    "Invalid API key",
                    "Send one Authorization header with one API key: "
                    "`Authorization: Bearer tt_...`.",
                )
                return
            if len(content_types) > 1:
                await problem(
                    415,
                    "unsupported_media_type",
                    "Unsupported media type",
                    "Send one Content-Type header: `Content-Type: application/json`.",
                )
                return
            if length is not None and length > limit:
                await problem(
                    413,
                    "body_too_large",
                    "Request body too large",
                    f"The request body is {length} bytes; the limit is {limit}.",
                )
                return
            await self.app(scope, limited_receive, send_with_id)
            if too_large:
                raise BodyTooLargeError
            if nul_found:
                raise NulCharacterError
            if refused is not None:
                raise refused
        except InvalidBodyError as exc:
            refused = None
            if not started:
                # a member is named as `field` too; the body as a whole, as the app's other
                # whole-body 422s do, only in errors[]
                named = {"field": exc.field} if exc.field else {}
                await problem(
                    422,
                    "invalid_request",
                    "Invalid request",
                    exc.detail,
                    **named,
                    errors=[{"field": exc.field, "message": exc.detail}],
                )
        except NulCharacterError:
            nul_found = False
            if not started:
                detail = _NUL_DETAIL.format(where="the request body")
                field = nul_field(b"".join(chunks))
                await problem(
                    422,
                    "invalid_request",
                    "Invalid request",
                    detail,
                    field=field,
                    errors=[{"field": field, "message": detail}],
                )
        except BodyTooLargeError:
            too_large = False
            if not started:
                await problem(
                    413,
                    "body_too_large",
                    "Request body too large",
                    f"The request body exceeds the limit of {limit} bytes.",
                )
        except Exception as exc:
            if missing_table(exc) or (missing_column(exc) and _schema_behind(scope)):
                log.error("%s", NOT_MIGRATED, extra={"request_id": request_id})
                if not started:
                    await problem(
                        503,
                        "database_not_migrated",
                        "Database not migrated",
                        "The service's database has no talktime tables, or an older schema; "
                        "an operator must run `talktime db upgrade`.",
                    )
                return
            if isinstance(exc, sa.exc.OperationalError):
                log.warning("database unavailable: %s", exc.orig, extra={"request_id": request_id})
                if not started:
                    await problem(
                        503,
                        "database_unavailable",
                        "Database unavailable",
                        "The service's database could not serve the request (unreachable, "
                        "locked, full or read-only); try again shortly (a money-moving request "
                        "with the same Idempotency-Key).",
                    )
                return
            if isinstance(exc, sa.exc.TimeoutError):  # every pooled connection was in use
                log.warning(
                    "no database connection free: %s", exc, extra={"request_id": request_id}
                )
                if not started:
                    await problem(
                        503,
                        "service_busy",
                        "Service busy",
                        "Every database connection of the service is in use; try again shortly "
                        "(a money-moving request with the same Idempotency-Key).",
                    )
                return
            if damaged_database(exc):
                log.error(
                    "the database file is damaged or not a database: %s",
                    getattr(exc, "orig", exc),
                    extra={"request_id": request_id},
                )
                if not started:
                    await problem(
                        503,
                        "database_unavailable",
                        "Database unavailable",
                        "The service's database file is damaged or is not a database; an "
                        "operator must restore it.",
                    )
                return
            log.exception(
                "unexpected error",
                extra={"request_id": request_id, "path": scope.get("path", "")},
            )
            if not started:
                await problem(
                    500,
                    "internal_error",
                    "Internal error",
                    f"Something went wrong on our side; quote request id {request_id} to support.",
                )
        finally:
            request_id_var.reset(token)


class HeadMiddleware:
    """HEAD on any path is answered as GET without the body (RFC 9110 §9.3.2): the same status
    and headers, `Content-Length` included. FastAPI routes declare GET only, and answered HEAD
    with 405; declaring HEAD on each route would add HEAD operations to the OpenAPI document.
    The outermost middleware, so everything inside (metrics too) serves a GET; any other
    method costs one comparison."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                await send(message)
            elif kind == "http.response.pathsend" or (
                kind == "http.response.body" and not message.get("more_body", False)
            ):
                await send({"type": "http.response.body", "body": b""})

        await self.app({**scope, "method": "GET"}, receive, headers_only)
