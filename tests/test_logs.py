"""Logging: JSON lines in production mode, readable lines in dev."""

from __future__ import annotations

import json
import logging

import pytest

from talktime import logs


def test_json_mode_writes_one_object_per_line_with_extra_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json", "INFO")
    logging.getLogger("talktime.test").info("charged", extra={"account_id": "acc_1", "amount": 5})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "charged"
    assert record["level"] == "info"
    assert record["account_id"] == "acc_1"
    assert record["amount"] == 5


def test_console_mode_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("console", "INFO")
    logging.getLogger("talktime.test").warning("low balance", extra={"account_id": "acc_1"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "WARNING" in line
    assert "low balance" in line
    assert "account_id=acc_1" in line


def test_uvicorn_color_copy_of_the_message_is_not_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json", "INFO")
    logging.getLogger("uvicorn.error").info("up", extra={"color_message": "\x1b[1mup\x1b[0m"})
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "color_message" not in record
