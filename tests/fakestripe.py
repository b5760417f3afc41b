"""A tiny local Stripe: speaks `POST /v1/payment_intents` on loopback for the provider tests.

Payment methods named `pm_card_visa` succeed; `pm_card_chargeDeclined*` decline with a 402
card_error (as Stripe does for off-session payments); `pm_server_error` answers 500;
`pm_processing` (a bank debit, say) leaves the intent `processing` until a test changes its
status in `Seen.intents`, which `GET /v1/payment_intents/{id}` reads. Requests with an
`Idempotency-Key` seen before get the first response again, like Stripe (a `processing` intent
stays `processing` in the replay whatever it became since).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Seen:
    """What the fake server received: one entry per HTTP request."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    intents_created: int = 0
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)


DECLINE_CODES = {
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclined": "generic_decline",
}


def _answer(form: dict[str, str], seen: Seen, ids: Iterator[int]) -> tuple[int, dict[str, Any]]:
    pm = form.get("payment_method", "")
    if pm == "pm_server_error":
        return 500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}
    seen.intents_created += 1
    pi_id = f"pi_fake{next(ids)}"
    intent = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": int(form["amount"]),
        "currency": form["currency"],
        "customer": form.get("customer"),
        "payment_method": pm,
        "status": "processing" if pm == "pm_processing" else "succeeded",
    }
    seen.intents[pi_id] = intent
    if pm in DECLINE_CODES:
        intent["status"] = "requires_payment_method"
        return 402, {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": DECLINE_CODES[pm],
                "message": "Your card was declined.",
                "payment_intent": intent,
            }
        }
    return 200, intent


@contextmanager
def fake_stripe() -> Iterator[tuple[str, Seen]]:
    """Run the fake on a free loopback port; yields (base URL, what it saw)."""
    seen = Seen()
    ids = itertools.count(1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            key = self.headers.get("Idempotency-Key")
            with lock:
                seen.requests.append(
                    {
                        "path": self.path,
                        "form": form,
                        "idempotency_key": key,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                if self.path != "/v1/payment_intents":
                    status, body = 404, json.dumps({"error": {"type": "invalid_request_error"}})
                    payload = body.encode()
                elif key and key in seen.replies:
                    status, payload = seen.replies[key]
                else:
                    status, data = _answer(form, seen, ids)
                    payload = json.dumps(data).encode()
                    if key and status != 500:
                        seen.replies[key] = (status, payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            with lock:
                seen.requests.append({"path": self.path, "form": {}, "idempotency_key": None})
                intent = seen.intents.get(self.path.removeprefix("/v1/payment_intents/"))
                status = 200 if intent is not None else 404
                data = (
                    intent if intent is not None else {"error": {"type": "invalid_request_error"}}
                )
                payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
