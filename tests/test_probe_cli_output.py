"""What the CLI prints: `cycle run --json` gives money as decimal strings, and text from a rate
card or a setting (a description, a directory) is printed as written, never read as rich
markup (which dropped `[tags]` and crashed on a stray `[/]`)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import get_settings
from talktime.rating import shipped_card_dir
from talktime.wallet import Wallet

from ratecards import SHIPPED

WIDE = Console(width=1000)


@pytest.fixture
def cli(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """conftest's runner, printing on consoles wide enough that rich never wraps a line."""
    for module in ("app", "core", "rates", "cycle"):
        monkeypatch.setattr(sys.modules[f"talktime.cli.{module}"], "console", WIDE)
    return cli


def test_cycle_run_json_prints_amounts_as_decimal_strings(
    cli: CliRunner, engine: sa.Engine
) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("probe", 10_000_000)
    account = wallet.create_account("acme", "probe", "create-acme").account.id
    result = cli.invoke(app, ["cycle", "run", "--now", "2099-01-01", "--json"])
    if result.exit_code == 1:  # more than a year ahead of the period: step to its end instead
        period_end = wallet.account(account).period_end
        result = cli.invoke(app, ["cycle", "run", "--now", period_end.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.stdout)
    assert run["account_id"] == account
    assert (run["expired"], run["granted"], run["rentals_charged"]) == (
        "10.0000",
        "10.0000",
        "0.0000",
    )


@pytest.fixture
def bracket_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A rate_cards_dir whose path holds `[/]` and `[bold]`, and a card to import whose
    description does too."""
    cards = tmp_path / "cards[/]x[bold]y"
    cards.mkdir(parents=True)  # "cards[" / "]x[bold]y": the path reads "[/]"
    source = tmp_path / "probe"
    shutil.copytree(shipped_card_dir("passthrough"), source)
    toml = source / "card.toml"
    lines = toml.read_text().splitlines()
    lines = [
        'name = "probe"'
        if line.startswith("name =")
        else 'description = "Rates [/] for [bold]ops[/bold]"'
        if line.startswith("description =")
        else line
        for line in lines
    ]
    toml.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", str(cards))
    get_settings.cache_clear()
    return source


def test_rate_card_text_and_directories_are_printed_as_written(
    cli: CliRunner, engine: sa.Engine, bracket_dir: Path
) -> None:
    cards = get_settings().rate_cards_dir
    imported = cli.invoke(app, ["rates", "import", str(bracket_dir)])
    assert imported.exit_code == 0, imported.output
    assert f"imported: probe@{SHIPPED} effective from 2026-12-01 in {cards}/probe" in (
        imported.stdout
    )
    shown = cli.invoke(app, ["rates", "show", "probe"])
    assert shown.exit_code == 0, shown.output
    assert "Rates [/] for [bold]ops[/bold]" in shown.stdout
    assert f"imported: {cards}/probe/{SHIPPED}" in shown.stdout
    listed = cli.invoke(app, ["rates", "list"])
    assert listed.exit_code == 0, listed.output
    flat = "".join(listed.stdout.split())  # the title wraps to the table's width
    assert f"ratecards(importedonesin{cards})" in flat
    validated = cli.invoke(app, ["rates", "validate", str(bracket_dir)])
    assert validated.exit_code == 0, validated.output
    config = cli.invoke(app, ["config"])
    assert config.exit_code == 0, config.output
    assert f"rate_cards_dir = {cards!r}" in config.stdout


def test_an_import_into_a_relative_rate_cards_dir_prints_the_whole_path_it_stored_it_under(
    cli: CliRunner, bracket_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it printed `in rate_cards/probe/...`: relative to wherever the command ran, which a
    # server started from another directory never reads
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", "relative-cards")
    get_settings.cache_clear()
    imported = cli.invoke(app, ["rates", "import", str(bracket_dir)])
    assert imported.exit_code == 0, imported.output
    whole = tmp_path.resolve() / "relative-cards" / "probe" / SHIPPED
    assert f" in {whole}" in "".join(imported.stdout.splitlines())
