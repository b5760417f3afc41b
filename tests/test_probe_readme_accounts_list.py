"""The README tells an operator to "check `talktime accounts` before re-running a failed
bootstrap script" (`talktime accounts create` is not idempotent): `talktime accounts` lists the
accounts, on both backends, and `talktime accounts list --json` gives them to machines."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import wide_cli  # noqa: F401  (wide_cli: the `cli` fixture)
from talktime.cli import app
from talktime.store.wallet_tables import accounts

from ops_helpers import make_account


def test_talktime_accounts_lists_every_account_so_a_bootstrap_can_be_checked(
    cli: CliRunner, engine: sa.Engine
) -> None:
    first = make_account(engine, "Acme")
    second = make_account(engine, "[bold]Beta[/bold]")  # shown as written, never as markup

    result = cli.invoke(app, ["accounts"])

    assert result.exit_code == 0, result.output
    assert "Acme" in result.output
    assert "[bold]Beta[/bold]" in result.output
    ids = [line.split("│")[1].strip() for line in result.output.splitlines() if "│" in line]
    assert ids == [str(first), str(second)], result.output


def test_talktime_accounts_list_json_gives_id_name_plan_status_and_currency(
    cli: CliRunner, engine: sa.Engine
) -> None:
    account = make_account(engine, "Acme")

    result = cli.invoke(app, ["accounts", "list", "--json"])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["id"], r["name"], r["plan"], r["status"], r["currency"]) for r in rows] == [
        (account, "Acme", "ops-test", "active", "USD")
    ]
    assert rows[0]["created_at"].endswith("Z")


def test_talktime_accounts_on_an_empty_database_says_there_are_none(
    cli: CliRunner, engine: sa.Engine
) -> None:
    result = cli.invoke(app, ["accounts"])

    assert result.exit_code == 0, result.output
    assert "no accounts" in result.output
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one() == 0


def test_talktime_accounts_list_limit_shows_the_newest_and_says_how_many_exist(
    cli: CliRunner, engine: sa.Engine
) -> None:
    ids = [make_account(engine, f"acct-{n}") for n in range(3)]

    result = cli.invoke(app, ["accounts", "list", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.output)] == ids[1:]

    text = cli.invoke(app, ["accounts", "list", "--limit", "2"])
    assert text.exit_code == 0, text.output
    assert "acct-0" not in text.output
    assert "the newest 2 of 3 accounts" in text.output
