"""Settings: environment over talktime.toml over defaults; `talktime config` masks secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from clikit import talktime_main
from talktime.cli import app
from talktime.config import Settings, get_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "talktime.toml").write_text("")
    monkeypatch.setenv("TALKTIME_CONFIG", str(tmp_path / "talktime.toml"))
    for var in ("TALKTIME_DATABASE_URL", "TALKTIME_PORT", "TALKTIME_ADMIN_KEY"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()


def test_defaults_use_a_local_sqlite_file() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///./talktime.db"
    assert settings.sqlite_synchronous == "FULL"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_toml_file_overrides_defaults_and_environment_overrides_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "talktime.toml").write_text('port = 9000\nlog_format = "json"\n')
    assert Settings().port == 9000
    monkeypatch.setenv("TALKTIME_PORT", "9100")
    settings = Settings()
    assert settings.port == 9100
    assert settings.log_format == "json"


def test_unknown_or_invalid_setting_is_refused(tmp_path: Path) -> None:
    (tmp_path / "talktime.toml").write_text("prot = 9000\n")
    with pytest.raises(ValidationError, match="prot"):
        Settings()


def test_config_command_masks_secrets_and_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKTIME_ADMIN_KEY", "tt_admin_secret")
    monkeypatch.setenv("TALKTIME_DATABASE_URL", "postgresql+psycopg://u:hunter2@db/talktime")
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["admin_key"] == "********"
    assert "hunter2" not in result.stdout
    assert data["database_url"] == "postgresql+psycopg://u:***@db/talktime"


def test_a_settings_file_named_but_missing_is_refused_and_an_empty_name_reads_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A mistyped TALKTIME_CONFIG left every setting at its default without a word."""
    missing = talktime_main(monkeypatch, "config", TALKTIME_CONFIG=str(tmp_path / "typo.toml"))
    assert missing.returncode == 1
    assert "error[invalid_settings]" in missing.stderr
    assert "typo.toml" in missing.stderr
    assert "does not exist" in missing.stderr
    monkeypatch.chdir(tmp_path)  # a ./talktime.toml here is not read with an empty name
    (tmp_path / "talktime.toml").write_text("port = 9000\n")
    none = talktime_main(monkeypatch, "config", "--json", TALKTIME_CONFIG="")
    assert none.returncode == 0, none.stderr
    assert json.loads(none.stdout)["port"] == 8000


def _config_refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    """`talktime config` run with ``env``: refused as invalid settings; its stderr."""
    done = talktime_main(monkeypatch, "config", **env)
    assert done.returncode == 1
    assert done.stderr.startswith("error[invalid_settings]: "), done.stderr
    return done.stderr


def test_a_settings_file_that_is_not_utf8_is_refused_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It was a UnicodeDecodeError traceback."""
    (tmp_path / "latin1.toml").write_bytes('admin_key = "clé"\n'.encode("latin-1"))
    err = _config_refused(monkeypatch, TALKTIME_CONFIG=str(tmp_path / "latin1.toml"))
    assert "is not UTF-8 text (byte 15)" in err


def test_a_settings_path_naming_a_directory_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It was read as no file: every setting at its default, without a word."""
    (tmp_path / "talktime.toml").write_text("port = 9000\n")
    assert "which is a directory" in _config_refused(monkeypatch, TALKTIME_CONFIG=str(tmp_path))


def test_a_misspelt_setting_in_the_environment_is_refused_naming_the_right_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`TALKTIME_DATABASE_ULR` was ignored: the database fell back to ./talktime.db."""
    err = _config_refused(
        monkeypatch, TALKTIME_CONFIG="", TALKTIME_DATABASE_ULR=f"sqlite:///{tmp_path / 'meant.db'}"
    )
    assert "TALKTIME_DATABASE_ULR" in err
    assert "did you mean TALKTIME_DATABASE_URL?" in err
    other = talktime_main(monkeypatch, "config", TALKTIME_CONFIG="", TALKTIME_SOMETHING_ELSE="1")
    assert other.returncode == 0, other.stderr  # a name close to no setting stays another's


def test_a_misspelt_talktime_config_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`TALKTIME_CONFG` was ignored: ./talktime.toml or the defaults were read instead."""
    (tmp_path / "my.toml").write_text("port = 9000\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TALKTIME_CONFIG")
    done = talktime_main(monkeypatch, "config", TALKTIME_CONFG=str(tmp_path / "my.toml"))
    assert done.returncode == 1
    assert "did you mean TALKTIME_CONFIG?" in done.stderr
