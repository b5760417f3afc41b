"""Text that is not UTF-8 on the command line, on stdin or in a file: a clear
`error[invalid_text]` naming the byte, never a traceback or a sentence about surrogates."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import get_settings

US = "+14155550123"
US2 = "+12015550123"
# What Python hands a program for the argument bytes b"ab\xffcd" (surrogateescape).
ARGUMENT_WITH_BYTE_FF = b"ab\xffcd".decode("utf-8", "surrogateescape")


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", str(tmp_path / "rate_cards"))
    get_settings.cache_clear()


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_segments_refuses_an_argument_that_is_not_utf8_naming_the_byte() -> None:
    code, out, err = run("segments", ARGUMENT_WITH_BYTE_FF)
    assert code == 1
    assert out == ""
    assert "error[invalid_text]: the text is not valid UTF-8: byte 0xFF at character 2" in err
    assert "surrogate" not in err


def test_segments_refuses_stdin_that_is_not_utf8_naming_the_offset() -> None:
    code, _, err = run("segments", stdin=b"ab\xffcd\n")
    assert code == 1
    assert "error[invalid_text]: stdin is not valid UTF-8: byte 0xFF at offset 2" in err


def test_segments_still_reads_utf8_stdin_and_drops_a_byte_order_mark() -> None:
    code, out, _ = run("segments", "--json", stdin="\ufeffhéllo\n".encode())
    assert code == 0
    assert '"units": 5' in out


def test_quote_sms_refuses_text_that_is_not_utf8() -> None:
    code, _, err = run("quote", "sms", "--from", US, "--to", US2, ARGUMENT_WITH_BYTE_FF)
    assert code == 1
    assert "error[invalid_text]: the text is not valid UTF-8" in err


def test_quote_call_refuses_a_file_that_is_not_utf8_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "call.json"
    path.write_bytes(b'{"direction": "outbound\xff"}')
    code, _, err = run("quote", "call", str(path))
    assert code == 1
    assert f"error[invalid_text]: {path} is not valid UTF-8: byte 0xFF at offset 23" in err
    assert "Traceback" not in err


def test_quote_call_refuses_stdin_that_is_not_utf8() -> None:
    code, _, err = run("quote", "call", "-", stdin=b'{"a": "\xff"}')
    assert code == 1
    assert "error[invalid_text]: stdin is not valid UTF-8: byte 0xFF at offset 7" in err
