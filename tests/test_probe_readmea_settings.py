"""README walkthrough (Configuration): a SQLite URL option the driver cannot use is
`error[invalid_settings]` naming the variable, like PostgreSQL's, never a traceback or a
warning that the option is being ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from talktime.config import SettingsError, load_settings
from test_probe_ops_settings import _talktime


@pytest.mark.parametrize(
    ("option", "said"),
    [("timeout=abc", "could not convert"), ("check_same_thread=maybe", "not true/false")],
)
def test_a_sqlite_option_the_driver_cannot_read_is_a_settings_error_in_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, option: str, said: str
) -> None:
    url = f"sqlite:///{tmp_path}/t.db?{option}"
    err = _talktime(monkeypatch, tmp_path, "accounts", TALKTIME_DATABASE_URL=url)
    assert err.startswith("error[invalid_settings]: setting TALKTIME_DATABASE_URL: "), err
    assert said in err


def test_a_sqlite_option_the_driver_would_ignore_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_DATABASE_URL", f"sqlite:///{tmp_path}/t.db?bogusopt=1")
    with pytest.raises(SettingsError, match=r"does not take the connection option\(s\) bogusopt"):
        load_settings()


@pytest.mark.parametrize("query", ["", "?timeout=3", "?pool=null", "?uri=true&mode=ro"])
def test_sqlite_options_the_driver_takes_are_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, query: str
) -> None:
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_DATABASE_URL", f"sqlite:///{tmp_path}/t.db{query}")
    assert load_settings().database_url.endswith(query or "t.db")
