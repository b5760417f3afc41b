"""Bad settings and an unreachable database make the `talktime` command say what to fix
(`error[invalid_settings]`, `error[database_unavailable]`, exit 1), never a traceback, and
never repeat a password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clikit import talktime_main

TALKTIME = str(Path(sys.executable).with_name("talktime"))


def _talktime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str, toml: str | None = None, **env: str
) -> str:
    """Run the command (in this process, through its entry point) with only the given settings;
    return its stderr after checking that it was refused without a traceback."""
    config = tmp_path / "talktime.toml"
    if toml is not None:
        config.write_text(toml)
    named = str(config) if toml is not None else ""
    done = talktime_main(monkeypatch, *args, TALKTIME_CONFIG=named, **env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_a_setting_of_the_wrong_type_in_the_environment_is_named(tmp_path: Path) -> None:
    # the other tests run the entry point in-process; this one runs the installed command, as
    # an operator does
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TALKTIME_")}
    environ.update(TALKTIME_CONFIG="", TALKTIME_PORT="abc")
    done = subprocess.run(
        [TALKTIME, "config"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error[invalid_settings]: setting TALKTIME_PORT = 'abc': ")
    assert "valid integer" in done.stderr


def test_an_unknown_key_in_talktime_toml_is_named_with_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    err = _talktime(monkeypatch, tmp_path, "serve", toml='databse_url = "sqlite:///x.db"\n')
    assert err.startswith("error[invalid_settings]: unknown setting 'databse_url' in ")
    assert "did you mean 'database_url'?" in err


def test_a_talktime_toml_that_is_not_toml_is_refused_with_the_position(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    err = _talktime(monkeypatch, tmp_path, "run", toml="database_url = \n")
    assert err.startswith("error[invalid_settings]: the settings file ")
    assert "is not valid TOML: Invalid value (at line 1, column 16)" in err


def test_a_value_out_of_range_in_talktime_toml_names_the_file_and_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    err = _talktime(monkeypatch, tmp_path, "worker", toml="workers = 0\n")
    assert "setting workers in " in err
    assert "greater than or equal to 1" in err


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url:hunter2", "not a database URL"),
        ("mysql://u:hunter2@db/x", "unsupported database 'mysql'"),
    ],
)
def test_a_database_url_that_cannot_be_used_is_refused_without_repeating_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, reason: str
) -> None:
    err = _talktime(monkeypatch, tmp_path, "db", "upgrade", TALKTIME_DATABASE_URL=url)
    assert err.startswith("error[invalid_settings]: setting TALKTIME_DATABASE_URL: ")
    assert reason in err
    assert "hunter2" not in err


def test_a_stripe_api_base_that_is_not_an_http_url_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    err = _talktime(monkeypatch, tmp_path, "config", TALKTIME_STRIPE_API_BASE="localhost:12111")
    assert "setting TALKTIME_STRIPE_API_BASE = 'localhost:12111': not an http(s) URL" in err


@pytest.mark.parametrize(
    ("url", "command"),
    [
        ("postgresql+psycopg://u:hunter2@127.0.0.1:1/x", ["jobs"]),
        # only `db upgrade` opens a SQLite path with no file (others: database_not_found)
        ("sqlite:////nonexistent/dir/talktime.db", ["db", "upgrade"]),
    ],
)
def test_a_database_that_does_not_answer_is_database_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, command: list[str]
) -> None:
    err = _talktime(monkeypatch, tmp_path, *command, TALKTIME_DATABASE_URL=url)
    assert err.startswith("error[database_unavailable]: the database ")
    assert "did not answer" in err
    assert "hunter2" not in err


def test_talktime_config_masks_a_password_given_as_a_query_parameter_or_in_the_stripe_base(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # libpq takes `?password=`: `talktime config` showed it, and the stripe_api_base userinfo
    done = talktime_main(
        monkeypatch,
        "config",
        "--json",
        TALKTIME_CONFIG="",
        TALKTIME_DATABASE_URL="postgresql+psycopg://u@db/talktime?password=hunter2&sslmode=require",
        TALKTIME_STRIPE_API_BASE="https://proxy:sk_live_hunter3@stripe.internal:8443",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["database_url"] == "postgresql+psycopg://u@db/talktime?password=***&sslmode=require"
    assert data["stripe_api_base"] == "https://***@stripe.internal:8443"
    assert "hunter" not in done.stdout


@pytest.mark.parametrize(
    "args", [["serve", "--port", "70000"], ["run", "--port", "-1"], ["serve", "--workers", "0"]]
)
def test_a_listen_port_or_worker_count_out_of_range_is_refused_before_starting(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    # `talktime serve --port 70000` started and logged "running on http://127.0.0.1:70000"
    done = talktime_main(monkeypatch, *args, TALKTIME_CONFIG="")
    assert done.returncode == 2, done.stderr
    assert f"Invalid value for '{args[1]}'" in done.stderr
