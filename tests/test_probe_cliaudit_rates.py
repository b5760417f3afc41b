"""`talktime rates show` takes `--version V` or `--at DATE` (the README's `[--version V | --at
D]`): both together are refused rather than `--at` silently ignored, and an empty `--at` is not
read as today."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (the `cli` fixture)
from talktime.cli import app

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no database read


def test_rates_show_refuses_version_and_at_together(cli: CliRunner) -> None:
    out = refused(
        cli.invoke(
            app, ["rates", "show", "default", "--version", "2026.11.1", "--at", "2020-01-01"]
        ),
        "invalid_request",
    )
    assert "give --version or --at, not both" in out


def test_rates_show_refuses_an_empty_at_instead_of_reading_it_as_today(cli: CliRunner) -> None:
    refused(cli.invoke(app, ["rates", "show", "default", "--at", ""]), "invalid_date")
