"""`talktime segments`: the human view, JSON, stdin, smart-encoding advice and refusals."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from talktime.cli import app

runner = CliRunner()


def test_json_prints_every_field() -> None:
    result = runner.invoke(app, ["segments", "--json", "a" * 161])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["encoding"], data["segments"], data["units"]) == ("GSM-7", 2, 161)
    assert data["parts"] == ["a" * 153, "a" * 8]
    assert data["remaining"] == 145


def test_reads_stdin_without_its_final_newline() -> None:
    result = runner.invoke(app, ["segments", "--json"], input="a" * 160 + "\n")
    assert json.loads(result.stdout)["segments"] == 1


def test_human_view_shows_encoding_parts_and_forcing_characters() -> None:
    result = runner.invoke(app, ["segments", "Hello 😀 ç"])
    assert result.exit_code == 0
    assert "UCS-2" in result.stdout
    assert "1 segment" in result.stdout
    assert "forced UCS-2 by: 😀, ç" in result.stdout


def test_human_view_says_what_smart_encoding_would_save() -> None:
    text = "It’s ready — pick it up at the “front desk”… " * 2
    result = runner.invoke(app, ["segments", text])
    assert "2 segments" in result.stdout
    assert "replacing ’ with '" in result.stdout
    assert "saves 1 segment" in result.stdout
    smart = runner.invoke(app, ["segments", "--smart", text])
    assert "GSM-7" in smart.stdout
    assert "smart encoding replaced ’ with '" in smart.stdout


def test_language_option_uses_shift_tables() -> None:
    result = runner.invoke(app, ["segments", "--language", "tr", "Şişe"])
    assert "GSM-7" in result.stdout
    assert "Turkish locking shift table" in result.stdout


def test_unknown_language_is_refused_with_its_code() -> None:
    result = runner.invoke(app, ["segments", "--language", "fr", "x"])
    assert result.exit_code == 1
    assert "language must be one of tr, es, pt" in result.stderr
