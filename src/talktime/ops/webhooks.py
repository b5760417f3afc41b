"""Webhook endpoints, events and their at-least-once delivery with retries and a log per attempt.

An event (from the wallet's outbox, or raised here) becomes one delivery per matching endpoint of
its account, and each delivery attempt is a job (`webhooks.deliver`). For a disabled endpoint the
delivery is `skipped`: listed, never attempted, sent only when redelivered after re-enabling. A
failed attempt queues the next one with exponential back-off for up to 24 hours; an endpoint that
fails a delivery for that long is disabled and a `webhook_endpoint.disabled` event goes to the
account's other endpoints. The `webhook-id` is the event id, stable across retries, so receivers
dedupe on it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from talktime import money
from talktime.config import Settings
from talktime.errors import TalktimeError, naming
from talktime.ops import jobs, signing
from talktime.ops.clock import HOUR, SECOND, iso, now_us
from talktime.ops.urlpolicy import WebhookUrlNotAllowedError, check_url, pinned_address
from talktime.service.errors import InvalidRequestError
from talktime.store.ops_tables import jobs as jobs_table
from talktime.store.ops_tables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)
from talktime.store.wallet_tables import accounts
from talktime.store.writer import writing
from talktime.wallet import outbox

DELIVER = "webhooks.deliver"
RETRY_WINDOW_US = 24 * HOUR
RETRY_BASE_US = 30 * SECOND
RETRY_CAP_US = 4 * HOUR
ALL_EVENTS = "*"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
#: Every event type an endpoint can ask for (besides "*").
EVENT_TYPES = (*outbox.EVENT_TYPES, ENDPOINT_DISABLED)
MAX_ENDPOINTS_PER_ACCOUNT = 20


class WebhookEndpointNotFoundError(TalktimeError):
    code = "webhook_endpoint_not_found"
    status = 404
    title = "Webhook endpoint not found"


class WebhookDeliveryNotFoundError(TalktimeError):
    code = "webhook_delivery_not_found"
    status = 404
    title = "Webhook delivery not found"


class WebhookEndpointLimitError(TalktimeError):
    code = "webhook_endpoint_limit"
    status = 409
    title = "Too many webhook endpoints"


class InvalidEventTypesError(TalktimeError):
    code = "invalid_event_types"
    status = 422
    title = "Invalid event types"


class WebhookEndpointDisabledError(TalktimeError):
    code = "webhook_endpoint_disabled"
    status = 409
    title = "Webhook endpoint disabled"


@dataclass(frozen=True)
class Endpoint:
    """A place an account receives its events."""

    id: str
    account_id: int
    url: str
    secret: str
    event_types: tuple[str, ...]
    description: str
    enabled: bool
    failure_count: int
    disabled_reason: str | None
    created_at: int

    def to_dict(self, *, with_secret: bool = False) -> dict[str, Any]:
        """Plain data for the API; the secret only when asked (creation, rotation)."""
        out: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "event_types": list(self.event_types),
            "description": self.description,
            "enabled": self.enabled,
            "failure_count": self.failure_count,
            "disabled_reason": self.disabled_reason,
            "created_at": iso(self.created_at),
        }
        if with_secret:
            out["secret"] = self.secret
        return out


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        account_id=row.account_id,
        url=row.url,
        secret=row.secret,
        event_types=tuple(row.event_types),
        description=row.description,
        enabled=bool(row.enabled),
        failure_count=int(row.failure_count),
        disabled_reason=row.disabled_reason,
        created_at=int(row.created_at),
    )


def _event_types(types: Sequence[str]) -> list[str]:
    cleaned = sorted({t.strip() for t in types if t.strip()})
    if not cleaned:
        raise InvalidEventTypesError(
            'list at least one event type, or "*" for every event', field="event_types"
        )
    unknown = [t for t in cleaned if t != ALL_EVENTS and t not in EVENT_TYPES]
    if unknown:
        raise InvalidEventTypesError(
            f"unknown event type {', '.join(repr(t) for t in unknown)}: the types are "
            f'{", ".join(EVENT_TYPES)}, or "*" for every event',
            unknown=unknown,
            known=list(EVENT_TYPES),
            field="event_types",
        )
    return cleaned


def create_endpoint(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    url: str,
    event_types: Sequence[str] = (ALL_EVENTS,),
    description: str = "",
    *,
    now: int | None = None,
) -> Endpoint:
    """Register an endpoint with a fresh `whsec_` secret, after checking the URL policy.

    The account row is locked (PostgreSQL; SQLite's write lock serialises anyway) before counting,
    so concurrent creations never exceed `MAX_ENDPOINTS_PER_ACCOUNT`.
    """
    with naming("url"):
        check_url(url, allow_private=settings.webhooks_allow_private)
    now = now_us() if now is None else now
    endpoint_id = "we_" + secrets.token_hex(12)
    with writing(engine) as conn:
        conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())
        count = conn.execute(
            sa.select(sa.func.count()).where(webhook_endpoints.c.account_id == account_id)
        ).scalar_one()
        if count >= MAX_ENDPOINTS_PER_ACCOUNT:
            raise WebhookEndpointLimitError(
                f"an account has at most {MAX_ENDPOINTS_PER_ACCOUNT} webhook endpoints; "
                "delete one first"
            )
        conn.execute(
            webhook_endpoints.insert().values(
                id=endpoint_id,
                account_id=account_id,
                url=url,
                secret=signing.generate_secret(),
                event_types=_event_types(event_types),
                description=description,
                enabled=True,
                failure_count=0,
                created_at=now,
                updated_at=now,
            )
        )
    return get_endpoint(engine, account_id, endpoint_id)


def get_endpoint(engine: sa.Engine, account_id: int, endpoint_id: str) -> Endpoint:
    """One endpoint of the account (another account's id answers not found)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        row = conn.execute(
            sa.select(webhook_endpoints).where(
                webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.account_id == account_id,
            )
        ).first()
    if row is None:
        raise WebhookEndpointNotFoundError(f"no webhook endpoint {endpoint_id} in this account")
    return _endpoint(row)


def list_endpoints(engine: sa.Engine, account_id: int) -> list[Endpoint]:
    """The account's endpoints, oldest first."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        rows = conn.execute(
            sa.select(webhook_endpoints)
            .where(webhook_endpoints.c.account_id == account_id)
            .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
        )
        return [_endpoint(r) for r in rows]


def update_endpoint(
    engine: sa.Engine,
    settings: Settings,
    account_id: int,
    endpoint_id: str,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    now: int | None = None,
) -> Endpoint:
    """Change an endpoint; enabling it again resets its failure count."""
    get_endpoint(engine, account_id, endpoint_id)
    now = now_us() if now is None else now
    values: dict[str, Any] = {"updated_at": now}
    if url is not None:
        with naming("url"):
            values["url"] = check_url(url, allow_private=settings.webhooks_allow_private)
    if event_types is not None:
        values["event_types"] = _event_types(event_types)
    if description is not None:
        values["description"] = description
    if enabled is not None:
        values["enabled"] = enabled
        if enabled:
            values.update(failure_count=0, disabled_reason=None)
        else:
            values["disabled_reason"] = "disabled by the account"
    with writing(engine) as conn:
        conn.execute(
            webhook_endpoints.update()
            .where(
                webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.account_id == account_id,
            )
            .values(**values)
        )
    return get_endpoint(engine, account_id, endpoint_id)


def rotate_secret(engine: sa.Engine, account_id: int, endpoint_id: str) -> Endpoint:
    """Give the endpoint a new secret (shown once in the answer)."""
    get_endpoint(engine, account_id, endpoint_id)
    with writing(engine) as conn:
        conn.execute(
            webhook_endpoints.update()
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(secret=signing.generate_secret(), updated_at=now_us())
        )
    return get_endpoint(engine, account_id, endpoint_id)


def delete_endpoint(engine: sa.Engine, account_id: int, endpoint_id: str) -> None:
    """Remove an endpoint with its deliveries and their attempt log.

    The endpoint row is locked first (PostgreSQL; SQLite's write lock serialises anyway): a
    dispatch adding a delivery, or an attempt being recorded, finishes before the rows are counted
    for deletion, or finds the endpoint gone (they lock it too), so neither breaks the foreign
    keys half way.
    """
    with writing(engine) as conn:
        found = conn.execute(
            sa.select(webhook_endpoints.c.id)
            .where(
                webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.account_id == account_id,
            )
            .with_for_update()
        ).first()
        if found is None:
            raise WebhookEndpointNotFoundError(f"no webhook endpoint {endpoint_id} in this account")
        ids = sa.select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.endpoint_id == endpoint_id
        )
        conn.execute(webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(ids)))
        conn.execute(
            webhook_deliveries.delete().where(webhook_deliveries.c.endpoint_id == endpoint_id)
        )
        conn.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == endpoint_id))


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def record_event(
    conn: sa.Connection,
    account_id: int,
    event_type: str,
    data: Mapping[str, Any],
    *,
    event_id: str | None = None,
    source: str = "ops",
    now: int | None = None,
    created_at: int | None = None,
    except_endpoint: str | None = None,
) -> str | None:
    """Store an event and give it one delivery per endpoint of the account that subscribes to
    its type (but `except_endpoint`), in the caller's transaction: an enabled endpoint's is
    `pending` with its first attempt queued, a disabled one's `skipped` (never attempted until it
    is redelivered). Returns the event id, or None if an event with that id was recorded
    before."""
    now = now_us() if now is None else now
    event_id = event_id or "msg_" + secrets.token_hex(12)
    inserted = conn.execute(
        _insert(conn, webhook_events)
        .values(
            id=event_id,
            account_id=account_id,
            type=event_type,
            payload=dict(data),
            source=source,
            created_at=now if created_at is None else created_at,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(webhook_events.c.id)
    ).scalar_one_or_none()
    if inserted is None:
        return None
    # FOR KEY SHARE: an endpoint being deleted is waited for and then skipped, and one read here
    # is deleted only after this transaction has committed its deliveries (see delete_endpoint).
    endpoints = conn.execute(
        sa.select(
            webhook_endpoints.c.id, webhook_endpoints.c.event_types, webhook_endpoints.c.enabled
        )
        .where(webhook_endpoints.c.account_id == account_id)
        .order_by(webhook_endpoints.c.id)
        .with_for_update(read=True, key_share=True)
    ).all()
    for endpoint_id, types, enabled in endpoints:
        if endpoint_id == except_endpoint or (ALL_EVENTS not in types and event_type not in types):
            continue
        delivery_id = conn.execute(
            webhook_deliveries.insert()
            .values(
                event_id=event_id,
                endpoint_id=endpoint_id,
                account_id=account_id,
                state="pending" if enabled else "skipped",
                attempts=0,
                window_start=now,
                next_attempt_at=now if enabled else None,
                created_at=now,
            )
            .returning(webhook_deliveries.c.id)
        ).scalar_one()
        if enabled:
            _queue_attempt(conn, int(delivery_id), f"webhook:{delivery_id}:1", now)
    return event_id


def _queue_attempt(conn: sa.Connection, delivery_id: int, dedupe_key: str, at: int) -> None:
    jobs.enqueue(
        conn,
        DELIVER,
        {"delivery_id": delivery_id},
        run_at=at,
        dedupe_key=dedupe_key,
        max_attempts=5,
        now=at,
    )


MONEY_FIELDS = frozenset(
    {
        "actual",
        "amount",
        "available",
        "limit",
        "monthly_price",
        "paid_balance",
        "threshold",
        "uncollected",
        "used",
    }
)
"""Keys of the wallet's event payloads that hold money (integer micro-units in the outbox)."""


def event_data(payload: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """A wallet outbox payload as a webhook's `data`: its money as decimal strings (`"4.0000"`,
    as the API writes it) next to the account's `currency`; other fields as they are."""
    data: dict[str, Any] = {}
    has_money = False
    for key, value in payload.items():
        if key in MONEY_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            data[key] = money.format(value, 4)
            has_money = True
        else:
            data[key] = value
    if has_money:
        data["currency"] = currency
    return data


def body(event_id: str, event_type: str, created_at: int, data: Mapping[str, Any]) -> bytes:
    """The JSON body sent for an event (the same bytes on every attempt)."""
    doc = {"id": event_id, "type": event_type, "timestamp": iso(created_at), "data": data}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def retry_delay_us(attempts: int) -> int:
    """Delay after failed attempt number `attempts`: 30 s doubling, at most 4 hours."""
    return jobs.backoff_us(attempts, RETRY_BASE_US, RETRY_CAP_US)


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt gave."""

    outcome: str  # ok | http_error | timeout | network_error | blocked
    response_code: int | None
    latency_us: int
    error: str | None


_clients: dict[float, httpx.Client] = {}
_clients_lock = threading.Lock()


def _client(timeout: float) -> httpx.Client:
    """One client per timeout for the process (building one loads the CA bundle). It keeps no
    idle connection: each attempt connects anew, so `_Deadline` always knows its socket."""
    with _clients_lock:
        client = _clients.get(timeout)
        if client is None:
            client = _clients[timeout] = httpx.Client(
                timeout=timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return client


class _Deadline:
    """Ends an attempt after `seconds` in all: httpx's timeouts count each read on its own, so a
    receiver sending a byte every few seconds (headers or body) held the worker for ever.

    The connection's socket is learnt from httpcore's trace events; when the time is up it is
    shut down (not closed: the reading thread still owns the descriptor), which ends the read
    that is waiting with an error.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore trace hook: remember the socket of each new connection (plain or TLS)."""
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        sock = info["return_value"].get_extra_info("socket")
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
                if self.expired:
                    self._cut(sock)

    @staticmethod
    def _cut(sock: socket.socket) -> None:
        # socket.socket's own shutdown: an SSLSocket's would drop its TLS state mid-read
        with contextlib.suppress(OSError):  # already closed
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                self._cut(sock)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def finish(self) -> None:
        """The attempt is over: the timer touches no socket from now on."""
        with self._lock:
            self._done = True
        self._timer.cancel()

    def __exit__(self, *exc: object) -> None:
        self.finish()


def _post(url: str, payload: bytes, head: dict[str, str], settings: Settings) -> AttemptResult:
    """POST one attempt within `webhooks_timeout_seconds` in all; only the status line and
    headers of the answer are read (a receiver's huge body is never loaded)."""
    started = time.perf_counter_ns()
    timeout = settings.webhooks_timeout_seconds
    deadline = _Deadline(timeout)
    try:
        address = pinned_address(url, allow_private=settings.webhooks_allow_private)
        target = httpx.URL(url)
        # Connect to the address just checked, never to a second DNS answer (rebinding): the
        # URL names the address, Host and TLS (SNI and certificate) the name as given.
        extensions: dict[str, Any] = {"trace": deadline.trace}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        with (
            deadline,
            _client(timeout).stream(
                "POST",
                target.copy_with(host=str(address)),
                content=payload,
                headers={
                    **head,
                    "host": target.netloc.decode("ascii"),
                    "content-type": "application/json",
                    "user-agent": "talktime-webhooks",
                },
                extensions=extensions,
            ) as response,
        ):
            status = response.status_code
            deadline.finish()  # before the response closes its connection
        latency = (time.perf_counter_ns() - started) // 1000
        ok = 200 <= status < 300
        return AttemptResult(
            "ok" if ok else "http_error", status, latency, None if ok else f"HTTP {status}"
        )
    except WebhookUrlNotAllowedError as exc:
        return AttemptResult("blocked", None, 0, exc.detail)
    except httpx.InvalidURL as exc:  # a URL stored before check_url parsed it as httpx does
        return AttemptResult("blocked", None, 0, f"the webhook URL is not a valid URL: {exc}")
    except httpx.HTTPError as exc:
        latency = (time.perf_counter_ns() - started) // 1000
        if deadline.expired:
            return AttemptResult("timeout", None, latency, f"no answer within {timeout:g} s")
        if isinstance(exc, httpx.TimeoutException):
            return AttemptResult("timeout", None, latency, f"timed out: {exc}")
        return AttemptResult("network_error", None, latency, f"{type(exc).__name__}: {exc}")


def deliver(
    engine: sa.Engine,
    settings: Settings,
    delivery_id: int,
    *,
    now: int | None = None,
    worker: str | None = None,
) -> str:
    """Make one attempt at a pending delivery; returns the delivery's state afterwards.

    Idempotent: a delivery that is not pending (delivered, failed, or skipped: those wait for a
    redelivery) is left alone, and so is one whose next attempt is not due yet (a job left over
    from before a redelivery or another job's attempt).
    Every attempt made is logged and counted; it settles the delivery (delivered, next retry,
    failed) only if no other worker recorded an attempt or redelivered it meanwhile.
    """
    now = now_us() if now is None else now
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        row = conn.execute(
            sa.select(
                webhook_deliveries,
                webhook_endpoints.c.url,
                webhook_endpoints.c.secret,
                webhook_endpoints.c.enabled,
                webhook_events.c.type,
                webhook_events.c.payload,
                webhook_events.c.created_at.label("event_created_at"),
            )
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id)
            .where(webhook_deliveries.c.id == delivery_id)
        ).first()
    if row is None or row.state != "pending":
        return "missing" if row is None else str(row.state)
    if row.next_attempt_at is not None and now < row.next_attempt_at:
        return "pending"  # a stale job: the attempt it was queued for was made or superseded
    if not row.enabled:
        with writing(engine) as conn:
            conn.execute(
                webhook_deliveries.update()
                .where(
                    webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.state == "pending"
                )
                .values(state="failed", next_attempt_at=None)
            )
        return "failed"
    payload = body(row.event_id, row.type, row.event_created_at, row.payload)
    head = signing.headers(row.secret, row.event_id, now // SECOND, payload)
    result = _post(row.url, payload, head, settings)
    with writing(engine) as conn:
        # The endpoint first (FOR NO KEY UPDATE, as _settle updates it): a deletion under way is
        # waited for and then found, instead of deleting the delivery under a new attempt row.
        if (
            conn.execute(
                sa.select(webhook_endpoints.c.id)
                .where(webhook_endpoints.c.id == row.endpoint_id)
                .with_for_update(key_share=True)
            ).first()
            is None
        ):
            return "missing"
        # The attempt was made, so it is logged and counted whatever happened meanwhile; it
        # decides the delivery's state only if the delivery is still as it was read (another
        # worker that made the same attempt, or a redelivery, changed `next_attempt_at` or the
        # state, and then owns what comes next). Until 1 Dec an overtaken attempt went
        # unlogged although the receiver got it.
        d = webhook_deliveries.c
        claimed = conn.execute(
            webhook_deliveries.update()
            .where(
                d.id == delivery_id,
                d.state == "pending",
                d.next_attempt_at.is_not_distinct_from(row.next_attempt_at),
            )
            .values(attempts=d.attempts + 1, last_response_code=result.response_code)
        ).rowcount
        if claimed != 1:
            conn.execute(
                webhook_deliveries.update()
                .where(d.id == delivery_id)
                .values(attempts=d.attempts + 1)
            )
        attempt = int(conn.execute(sa.select(d.attempts).where(d.id == delivery_id)).scalar_one())
        conn.execute(
            webhook_attempts.insert().values(
                delivery_id=delivery_id,
                attempt=attempt,
                at=now,
                outcome=result.outcome,
                response_code=result.response_code,
                latency_us=result.latency_us,
                error=result.error,
                worker=worker,
            )
        )
        if claimed != 1:
            return str(conn.execute(sa.select(d.state).where(d.id == delivery_id)).scalar_one())
        return _settle(conn, row, attempt, result, now)


def _settle(conn: sa.Connection, row: Any, attempt: int, result: AttemptResult, now: int) -> str:
    delivery = webhook_deliveries.c
    endpoint = webhook_endpoints.c
    if result.outcome == "ok":
        conn.execute(
            webhook_deliveries.update()
            .where(delivery.id == row.id)
            .values(state="delivered", delivered_at=now, next_attempt_at=None)
        )
        conn.execute(
            webhook_endpoints.update().where(endpoint.id == row.endpoint_id).values(failure_count=0)
        )
        return "delivered"
    conn.execute(
        webhook_endpoints.update()
        .where(endpoint.id == row.endpoint_id)
        .values(failure_count=endpoint.failure_count + 1)
    )
    # The schedule counts the attempts of this window only (this one included): a redelivery's
    # fresh window starts again at 30 s, as the first one did. The 24 hours run from the window's
    # first attempt, so a delivery whose first attempt came late (a worker down for a day) is
    # still retried before the endpoint is disabled.
    in_window, first_at = conn.execute(
        sa.select(sa.func.count(), sa.func.min(webhook_attempts.c.at)).where(
            webhook_attempts.c.delivery_id == row.id,
            webhook_attempts.c.at >= row.window_start,
        )
    ).one()
    window_end = int(first_at) + RETRY_WINDOW_US
    # the last retry is made when the window ends, so a delivery gives up only after 24 hours
    next_at = min(now + retry_delay_us(int(in_window)), window_end)
    if now < window_end:
        conn.execute(
            webhook_deliveries.update().where(delivery.id == row.id).values(next_attempt_at=next_at)
        )
        _queue_attempt(conn, row.id, f"webhook:{row.id}:{attempt + 1}", next_at)
        return "pending"
    conn.execute(
        webhook_deliveries.update()
        .where(delivery.id == row.id)
        .values(state="failed", next_attempt_at=None)
    )
    _disable(conn, row, int(in_window), result, now)
    return "failed"


def _disable(conn: sa.Connection, row: Any, attempts: int, last: AttemptResult, now: int) -> None:
    """Disable the endpoint, naming the attempt that gave up (`last`) in the reason, and tell the
    account's other endpoints (the disabled ones get it `skipped`)."""
    outcome = last.response_code if last.response_code is not None else last.outcome
    reason = (
        f"every attempt to deliver event {row.event_id} failed for 24 hours "
        f"({attempts} attempts, last: {outcome})"
    )
    disabled = conn.execute(
        webhook_endpoints.update()
        .where(webhook_endpoints.c.id == row.endpoint_id, webhook_endpoints.c.enabled == sa.true())
        .values(enabled=False, disabled_reason=reason, updated_at=now)
    ).rowcount
    if disabled:
        record_event(
            conn,
            row.account_id,
            ENDPOINT_DISABLED,
            {"endpoint_id": row.endpoint_id, "url": row.url, "reason": reason},
            now=now,
            except_endpoint=row.endpoint_id,
        )


def redeliver(
    engine: sa.Engine, account_id: int, delivery_id: int, *, now: int | None = None
) -> None:
    """Send a delivery again now (failed, delivered, pending or skipped), with a fresh 24-hour
    window; its endpoint must be enabled.

    A retry already scheduled for a pending delivery becomes stale (see `deliver`): it sends
    nothing.
    """
    now = now_us() if now is None else now
    with writing(engine) as conn:
        row = conn.execute(
            sa.select(webhook_deliveries.c.attempts, webhook_endpoints.c.enabled)
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .where(
                webhook_deliveries.c.id == delivery_id,
                webhook_deliveries.c.account_id == account_id,
            )
        ).first()
        if row is None:
            raise WebhookDeliveryNotFoundError(f"no webhook delivery {delivery_id} in this account")
        if not row.enabled:
            raise WebhookEndpointDisabledError(
                "the endpoint is disabled; enable it before redelivering"
            )
        _send_again(conn, delivery_id, now)


def _send_again(conn: sa.Connection, delivery_id: int, now: int) -> None:
    """Make the delivery pending with a fresh window and queue an attempt at ``now``."""
    conn.execute(
        webhook_deliveries.update()
        .where(webhook_deliveries.c.id == delivery_id)
        .values(state="pending", window_start=now, next_attempt_at=now, delivered_at=None)
    )
    # A key of its own: `webhook:{id}:{n}` may name a finished job (an attempt the disabled
    # endpoint skipped) or a scheduled retry, and then nothing would be queued.
    _queue_attempt(conn, delivery_id, f"webhook:{delivery_id}:redeliver:{now}", now)


MISSED_STATES = ("skipped", "failed")
"""The states a bulk redelivery sends again: what the endpoint never received."""
REDELIVER_BATCH = 1000


def redeliver_missed(
    engine: sa.Engine,
    account_id: int,
    endpoint_id: str,
    *,
    states: Sequence[str] = MISSED_STATES,
    since: int | None = None,
    now: int | None = None,
    limit: int = REDELIVER_BATCH,
) -> tuple[int, bool]:
    """Send again, oldest first, up to ``limit`` of the endpoint's deliveries in ``states``
    (`skipped`, `failed`) created at or after ``since``: what it missed while disabled or
    failing. Returns (how many were queued, whether more remain: call again for those). The
    endpoint must be enabled."""
    bad = [state for state in states if state not in MISSED_STATES]
    if bad or not states:
        raise InvalidRequestError(
            f"states must be some of {', '.join(MISSED_STATES)}"
            + (f", not {bad[0]!r}" if bad else ""),
            field="states",
        )
    now = now_us() if now is None else now
    d = webhook_deliveries.c
    with writing(engine) as conn:
        endpoint = conn.execute(
            sa.select(webhook_endpoints.c.enabled)
            .where(
                webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.account_id == account_id,
            )
            .with_for_update(key_share=True)
        ).first()
        if endpoint is None:
            raise WebhookEndpointNotFoundError(f"no webhook endpoint {endpoint_id} in this account")
        if not endpoint.enabled:
            raise WebhookEndpointDisabledError(
                "the endpoint is disabled; enable it before redelivering"
            )
        query = sa.select(d.id).where(d.endpoint_id == endpoint_id, d.state.in_(list(states)))
        if since is not None:
            query = query.where(d.created_at >= since)
        ids = conn.execute(query.order_by(d.id).limit(limit + 1)).scalars().all()
        for delivery_id in ids[:limit]:
            _send_again(conn, int(delivery_id), now)
    return min(len(ids), limit), len(ids) > limit


FINISHED_STATES = ("delivered", "failed", "skipped")
PRUNE_BATCH = 5000
PRUNE_BATCHES_PER_RUN = 20


class Pruned(NamedTuple):
    """What one `prune` deleted."""

    deliveries: int
    events: int


def prune(engine: sa.Engine, retention_us: int, *, now: int | None = None) -> Pruned:
    """Delete the finished deliveries (delivered, failed, skipped) created more than
    ``retention_us`` ago, with their attempt logs, then the events older than that with no
    delivery left; oldest first, in transactions of at most `PRUNE_BATCH` (`PRUNE_BATCHES_PER_RUN`
    a run of each). Pending deliveries stay whatever their age (the sweep and their retries own
    them), and so do their events.

    Delivery ids grow with their creation time, so the old ones are those below the first id
    created at or after the cutoff: found by walking the primary key from its start, which
    costs the old rows (about to go) and not the table. Events are found through their
    `created_at` index (0009)."""
    now = now_us() if now is None else now
    cutoff = now - retention_us
    return Pruned(_prune_deliveries(engine, cutoff), _prune_events(engine, cutoff))


def _in_batches(engine: sa.Engine, delete_batch: Callable[[sa.Connection], int]) -> int:
    """Run ``delete_batch`` (it deletes at most `PRUNE_BATCH` rows and says how many) in a
    transaction each, until one deletes fewer or `PRUNE_BATCHES_PER_RUN` ran; the total."""
    total = 0
    for _ in range(PRUNE_BATCHES_PER_RUN):
        with writing(engine) as conn:
            deleted = delete_batch(conn)
        total += deleted
        if deleted < PRUNE_BATCH:
            break
    return total


def _prune_deliveries(engine: sa.Engine, cutoff: int) -> int:
    d = webhook_deliveries.c

    def delete_batch(conn: sa.Connection) -> int:
        first_young = conn.execute(
            sa.select(d.id).where(d.created_at >= cutoff).order_by(d.id).limit(1)
        ).scalar()
        query = sa.select(d.id).where(d.created_at < cutoff, d.state.in_(FINISHED_STATES))
        if first_young is not None:
            query = query.where(d.id < first_young)
        # locked (PostgreSQL), so a redelivery making one pending meanwhile keeps it:
        # its row is skipped or, once that commits, no longer finished
        old = (
            conn.execute(query.order_by(d.id).limit(PRUNE_BATCH).with_for_update(skip_locked=True))
            .scalars()
            .all()
        )
        if old:
            conn.execute(sa.delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(old)))
            conn.execute(sa.delete(webhook_deliveries).where(d.id.in_(old)))
        return len(old)

    return _in_batches(engine, delete_batch)


def _prune_events(engine: sa.Engine, cutoff: int) -> int:
    """Events are given their deliveries in the transaction that records them and never again,
    so one without a delivery now will never have one: nothing can refer to it."""
    e = webhook_events.c
    undelivered = ~sa.exists().where(webhook_deliveries.c.event_id == e.id)

    def delete_batch(conn: sa.Connection) -> int:
        old = (
            conn.execute(
                sa.select(e.id)
                .where(e.created_at < cutoff, undelivered)
                .order_by(e.created_at)
                .limit(PRUNE_BATCH)
            )
            .scalars()
            .all()
        )
        if old:
            conn.execute(sa.delete(webhook_events).where(e.id.in_(old), undelivered))
        return len(old)

    return _in_batches(engine, delete_batch)


STALE_US = 10 * 60 * SECOND
"""How long past its time a pending delivery may wait before `sweep` looks for its job."""
SWEEP_BATCH = 500


def sweep(engine: sa.Engine, *, now: int | None = None) -> int:
    """Queue an attempt for every pending delivery that is overdue and has no job waiting or
    running for it; returns how many were queued.

    A delivery's job is given up (`failed`, "its last attempt never finished") when the workers
    running it die five times in a row; nothing else would queue it again, so the delivery
    stayed `pending` and its event was never sent. A delivery that has waited past its 24 hours
    that way is marked `failed` instead (redeliver it by hand), so a delivery that kills its
    worker is not retried for ever.
    """
    now = now_us() if now is None else now
    d, e = webhook_deliveries.c, webhook_endpoints.c
    prefix = sa.literal("webhook:") + sa.cast(d.id, sa.String) + sa.literal(":%")
    live_job = (
        sa.select(jobs_table.c.id)
        .where(
            jobs_table.c.kind == DELIVER,
            jobs_table.c.state.in_(("pending", "running")),
            jobs_table.c.dedupe_key.like(prefix),
        )
        .exists()
    )
    with writing(engine) as conn:
        # from the endpoints, through the (endpoint_id, state) index: pending rows only
        rows = conn.execute(
            sa.select(d.id, d.window_start)
            .select_from(webhook_endpoints.join(webhook_deliveries, d.endpoint_id == e.id))
            .where(d.state == "pending", d.next_attempt_at <= now - STALE_US, ~live_job)
            .order_by(d.id)
            .limit(SWEEP_BATCH)
        ).all()
        queued = 0
        for row in rows:
            if now - int(row.window_start) > RETRY_WINDOW_US + STALE_US:
                conn.execute(
                    webhook_deliveries.update()
                    .where(d.id == row.id, d.state == "pending")
                    .values(state="failed", next_attempt_at=None)
                )
                continue
            _queue_attempt(conn, int(row.id), f"webhook:{row.id}:sweep:{now}", now)
            queued += 1
    return queued


def list_deliveries(
    engine: sa.Engine,
    account_id: int,
    endpoint_id: str,
    limit: int = 100,
    *,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """The endpoint's deliveries, newest first, each with its attempt log; with `before`, only
    those older than that delivery id (the next page starts before the last id of this one)."""
    get_endpoint(engine, account_id, endpoint_id)
    d = webhook_deliveries.c
    query = (
        sa.select(webhook_deliveries, webhook_events.c.type)
        .join(webhook_events, webhook_events.c.id == d.event_id)
        .where(d.endpoint_id == endpoint_id)
    )
    if before is not None:
        query = query.where(d.id < before)
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        rows = conn.execute(query.order_by(d.id.desc()).limit(limit)).all()
        ids = [r.id for r in rows]
        attempts: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            for a in conn.execute(
                sa.select(webhook_attempts)
                .where(webhook_attempts.c.delivery_id.in_(ids))
                .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.attempt)
            ):
                attempts[a.delivery_id].append(
                    {
                        "attempt": a.attempt,
                        "at": iso(a.at),
                        "outcome": a.outcome,
                        "response_code": a.response_code,
                        "latency_ms": round(a.latency_us / 1000, 3),
                        "error": a.error,
                    }
                )
    return [
        {
            "id": r.id,
            "event_id": r.event_id,
            "event_type": r.type,
            "state": r.state,
            "attempts": r.attempts,
            "next_attempt_at": iso(r.next_attempt_at),
            "delivered_at": iso(r.delivered_at),
            "created_at": iso(r.created_at),
            "attempt_log": attempts[r.id],
        }
        for r in rows
    ]


def failure_counts(engine: sa.Engine) -> dict[str, int]:
    """Failed attempts by outcome, failed and skipped deliveries and disabled endpoints (for
    metrics)."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        out = {
            str(outcome): int(n)
            for outcome, n in conn.execute(
                sa.select(webhook_attempts.c.outcome, sa.func.count())
                .where(webhook_attempts.c.outcome != "ok")
                .group_by(webhook_attempts.c.outcome)
            )
        }
        states: dict[str, int] = dict(
            conn.execute(
                sa.select(webhook_deliveries.c.state, sa.func.count())
                .where(webhook_deliveries.c.state.in_(("failed", "skipped")))
                .group_by(webhook_deliveries.c.state)
            ).all()
        )
        out["deliveries_failed"] = int(states.get("failed", 0))
        out["deliveries_skipped"] = int(states.get("skipped", 0))
        out["endpoints_disabled"] = int(
            conn.execute(
                sa.select(sa.func.count()).where(webhook_endpoints.c.enabled == sa.false())
            ).scalar_one()
        )
    return out
