"""Settings that carry credentials are never shown: `talktime config`, a refused setting's
error and a database error name neither a password nor a key in a URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import SettingsError, get_settings, hide_password, load_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    for var in ("DATABASE_URL", "ADMIN_KEY", "STRIPE_API_KEY", "STRIPE_API_BASE"):
        monkeypatch.delenv(f"TALKTIME_{var}", raising=False)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "base",
    ["https://sk_live_HIDDEN@api.stripe.com", "https://sk_live_HIDDEN:@api.stripe.com"],
)
def test_config_hides_a_stripe_key_given_as_the_user_of_the_api_base(
    monkeypatch: pytest.MonkeyPatch, base: str
) -> None:
    monkeypatch.setenv("TALKTIME_STRIPE_API_BASE", base)
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    assert "HIDDEN" not in result.output
    assert json.loads(result.stdout)["stripe_api_base"] == "https://***@api.stripe.com"


def test_config_hides_the_user_name_next_to_a_password_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Stripe key given as the user name beside a password was shown."""
    monkeypatch.setenv("TALKTIME_STRIPE_API_BASE", "https://sk_live_HIDDEN:pw@stripe.internal")
    result = CliRunner().invoke(app, ["config", "--json"])
    assert "HIDDEN" not in result.output
    assert json.loads(result.stdout)["stripe_api_base"] == "https://***@stripe.internal"


@pytest.mark.parametrize(
    "base", ["https://u:HIDDEN@api.stripe.com:notaport", "ftp://u:HIDDEN@api.stripe.com"]
)
def test_a_refused_stripe_api_base_is_not_repeated_in_the_error(
    monkeypatch: pytest.MonkeyPatch, base: str
) -> None:
    monkeypatch.setenv("TALKTIME_STRIPE_API_BASE", base)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "TALKTIME_STRIPE_API_BASE" in refused.value.detail
    assert "HIDDEN" not in refused.value.detail


def test_a_database_password_with_a_raw_at_sign_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Parsed as password "pa" on host "ss-HIDDEN@db": the rest of the password was shown as
    # the host by `talktime config` and by every "database unavailable" error and log line.
    monkeypatch.setenv("TALKTIME_DATABASE_URL", "postgresql+psycopg://u:pa@ss-HIDDEN@db/talktime")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "TALKTIME_DATABASE_URL" in refused.value.detail
    assert "%40" in refused.value.detail  # says how to write it
    assert "HIDDEN" not in refused.value.detail


def test_hide_password_hides_everything_before_the_last_at_sign() -> None:
    shown = hide_password("postgresql+psycopg://u:pa@ss-HIDDEN@db:5432/talktime")
    assert "HIDDEN" not in shown
    assert shown == "postgresql+psycopg://u:***@db:5432/talktime"


def test_hide_password_hides_libpqs_sslpassword_too() -> None:
    url = "postgresql+psycopg://u@db/talktime?sslpassword=hunter2&sslmode=require"
    shown = hide_password(url)
    assert "hunter2" not in shown
    assert shown == "postgresql+psycopg://u@db/talktime?sslmode=require&sslpassword=***"
