"""`signing.verify` answers every malformed timestamp with WebhookSignatureError: a receiver
using it must never crash (OverflowError) on a hostile header."""

from __future__ import annotations

import time

import pytest

from talktime.ops import signing


@pytest.mark.parametrize(
    "stamp", ["1" + "0" * 400, "9" * 5000, "+{t}", " {t}", "{t} ", "1_{t}", "-{t}", "", "{t}.0"]
)
def test_a_malformed_webhook_timestamp_is_a_signature_error_never_a_crash(stamp: str) -> None:
    secret = signing.generate_secret()
    now = int(time.time())
    head = signing.headers(secret, "msg_1", now, b"{}")
    head["webhook-timestamp"] = stamp.format(t=now)
    with pytest.raises(signing.WebhookSignatureError):
        signing.verify(secret, head, b"{}")  # now read from the clock: a float


def test_a_well_formed_delivery_still_verifies() -> None:
    secret = signing.generate_secret()
    now = int(time.time())
    head = signing.headers(secret, "msg_1", now, b"{}")
    assert signing.verify(secret, head, b"{}") == "msg_1"
