"""Standard Webhooks signatures: `whsec_` secrets and `v1,` HMAC-SHA256 over `id.timestamp.body`.

Pure functions, no I/O: the sender signs with `sign`, a receiver checks with `verify` (the README
shows the same check in a few lines of plain Python).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

from talktime.errors import TalktimeError

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # Unix seconds; 15 digits are 31 million years


class WebhookSignatureError(TalktimeError, ValueError):
    """A delivery that is not authentic or not fresh; a ValueError too, as the README's
    plain-Python receiver raises, so a caller answering 400 on ValueError catches it."""

    code = "webhook_signature_invalid"
    status = 400
    title = "Invalid webhook signature"


def generate_secret() -> str:
    """A new endpoint secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw, validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,` + base64 HMAC-SHA256 of id.timestamp.body."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a received webhook; returns its `webhook-id`, or raises `WebhookSignatureError`.

    `received` are the request headers, names in any case. The timestamp must be within
    `tolerance` seconds of `now`; any one `v1,` signature among the space-separated ones may match.
    """
    received = {name.lower(): value for name, value in received.items()}
    try:
        msg_id = received["webhook-id"]
        stamp = received["webhook-timestamp"]
        offered = received["webhook-signature"].split()
    except KeyError as exc:
        raise WebhookSignatureError("missing or malformed webhook headers") from exc
    if not _TIMESTAMP.fullmatch(stamp):  # int() took "+1", " 1", "1_0" and 400-digit numbers
        raise WebhookSignatureError("the webhook-timestamp header is not Unix seconds")
    timestamp = int(stamp)
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError("webhook timestamp is too far from the current time")
    expected = sign(secret, msg_id, timestamp, body)
    if any(hmac.compare_digest(expected, sig) for sig in offered if sig.startswith("v1,")):
        return msg_id
    raise WebhookSignatureError("no webhook signature matches the secret")
