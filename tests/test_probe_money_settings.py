"""Numeric settings past what their consumer can hold are refused naming the setting: SQLite read
a busy timeout over 2^31 - 1 ms as 0 (no wait at all), and a call hold window past a call leg's
longest made every authorize walk millions of increments to hold time no call can use."""

from __future__ import annotations

from pathlib import Path

import pytest

from talktime.config import (
    MAX_CALL_HOLD_SECONDS,
    MAX_SQLITE_BUSY_TIMEOUT_MS,
    Settings,
    SettingsError,
    load_settings,
)
from talktime.rating.card import MAX_LEG_SECONDS
from talktime.store import make_engine


def _refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    """The detail of the SettingsError that loading these TALKTIME_* variables raises."""
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    for name, value in env.items():
        monkeypatch.setenv(f"TALKTIME_{name.upper()}", value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    return refused.value.detail


@pytest.mark.parametrize("value", ["2147483648", "10000000000", "99999999999999999999"])
def test_a_sqlite_busy_timeout_sqlite_would_read_as_zero_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    detail = _refusal(monkeypatch, sqlite_busy_timeout_ms=value)
    assert "TALKTIME_SQLITE_BUSY_TIMEOUT_MS" in detail
    assert "2147483647" in detail


def test_the_longest_accepted_busy_timeout_is_the_one_sqlite_applies(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'busy.db'}",
        sqlite_busy_timeout_ms=MAX_SQLITE_BUSY_TIMEOUT_MS,
    )
    engine = make_engine(settings.database_url, settings)
    try:
        with engine.connect() as conn:
            applied = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    finally:
        engine.dispose()
    assert applied == MAX_SQLITE_BUSY_TIMEOUT_MS


@pytest.mark.parametrize("value", ["604801", "100000000", "10000000000000000000"])
def test_a_call_hold_window_longer_than_any_call_leg_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    detail = _refusal(monkeypatch, call_hold_seconds=value)
    assert "TALKTIME_CALL_HOLD_SECONDS" in detail
    assert "604800" in detail


def test_the_call_hold_bound_is_a_call_legs_longest() -> None:
    assert MAX_CALL_HOLD_SECONDS == MAX_LEG_SECONDS
    assert Settings(call_hold_seconds=MAX_LEG_SECONDS).call_hold_seconds == MAX_LEG_SECONDS


@pytest.mark.parametrize(
    "line",
    ["port = true", "workers = true", "sqlite_busy_timeout_ms = false", "pg_pool_size = true"],
)
def test_a_toml_boolean_for_a_number_setting_is_refused_not_read_as_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, line: str
) -> None:
    config = tmp_path / "talktime.toml"
    config.write_text(line + "\n")
    monkeypatch.setenv("TALKTIME_CONFIG", str(config))
    with pytest.raises(SettingsError) as refused:
        load_settings()
    name = line.split(" = ")[0]
    assert f"setting {name} in " in refused.value.detail
    assert "must be a number, not a boolean" in refused.value.detail


def test_a_toml_boolean_still_sets_a_boolean_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "talktime.toml"
    config.write_text("group_commit = false\nport = 8080\n")
    monkeypatch.setenv("TALKTIME_CONFIG", str(config))
    settings = load_settings()
    assert (settings.group_commit, settings.port) == (False, 8080)
