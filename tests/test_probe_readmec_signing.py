"""The README says `talktime.ops.signing.verify(secret, headers, body)` does the same as its
plain-Python receiver example, whose callers answer 400 on ValueError: so a refusal is a
ValueError, and the headers are found whatever the case of their names (HTTP header names are
case-insensitive; `dict(handler.headers)` of the standard library's server is Title-Case)."""

from __future__ import annotations

import time

import pytest

from talktime.ops import signing


def test_a_refused_delivery_is_a_value_error_as_in_the_readme_example() -> None:
    secret = signing.generate_secret()
    head = signing.headers(secret, "msg_1", int(time.time()), b"{}")
    with pytest.raises(ValueError, match="no webhook signature matches"):
        signing.verify(secret, head, b"{} ")  # body changed: no signature matches
    with pytest.raises(ValueError, match="missing or malformed webhook headers"):
        signing.verify(secret, {}, b"{}")  # headers missing


def test_headers_with_title_case_names_verify() -> None:
    secret = signing.generate_secret()
    head = signing.headers(secret, "msg_1", int(time.time()), b"{}")
    titled = {name.title(): value for name, value in head.items()}  # Webhook-Id, ...
    assert signing.verify(secret, titled, b"{}") == "msg_1"
    upper = {name.upper(): value for name, value in head.items()}
    assert signing.verify(secret, upper, b"{}") == "msg_1"
