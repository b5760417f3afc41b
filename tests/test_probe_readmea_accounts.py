"""README walkthrough (Configuration): "`talktime accounts` lists them, the newest 100 by
default, `--json`, `--limit N`": the bare command takes both options (it said "No such
option: --limit", while its own footer said "--limit to see more")."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import wide_cli  # noqa: F401  (wide_cli: the `cli` fixture)
from talktime.cli import app

from ops_helpers import make_account


def test_talktime_accounts_takes_limit_and_json_like_accounts_list(
    cli: CliRunner, engine: sa.Engine
) -> None:
    ids = [make_account(engine, f"acct-{n}") for n in range(3)]

    as_json = cli.invoke(app, ["accounts", "--limit", "2", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert [r["id"] for r in json.loads(as_json.output)] == ids[1:]

    text = cli.invoke(app, ["accounts", "--limit", "2"])
    assert text.exit_code == 0, text.output
    assert "acct-0" not in text.output
    assert "the newest 2 of 3 accounts" in text.output


def test_list_options_before_another_accounts_command_are_a_usage_error(
    cli: CliRunner, engine: sa.Engine
) -> None:
    result = cli.invoke(app, ["accounts", "--json", "create", "Acme", "--plan", "startup"])

    assert result.exit_code == 2, result.output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM accounts")).scalar_one() == 0
