"""A database URL the driver refuses before any SQL runs (an unknown connection option) is a
clear `error[invalid_settings]`, not a traceback; and httpx's per-request log lines (a webhook
URL may carry a token in its query) stay out of the logs at INFO."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from talktime.logs import configure
from test_probe_ops_settings import _talktime


@pytest.mark.parametrize("option", ["bogusopt=1", "connect_timeout=x"])
def test_a_connection_option_the_driver_refuses_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, option: str
) -> None:
    url = f"postgresql+psycopg://u:hunter2@127.0.0.1:1/x?{option}"
    err = _talktime(monkeypatch, tmp_path, "accounts", TALKTIME_DATABASE_URL=url)
    assert err.startswith("error[invalid_settings]: the database URL "), err
    assert "TALKTIME_DATABASE_URL" in err
    assert "hunter2" not in err


def test_httpx_request_lines_are_not_logged_at_info() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level)
    try:
        configure("json", "INFO")
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        configure("json", "DEBUG")
        assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("httpx").setLevel(saved[2])
