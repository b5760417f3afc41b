"""The text statement names the currency of its amounts, as its JSON, its PDF and the API do
(it printed bare amounts); `talktime usage` takes one output format (--csv won over --json)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (the `cli` fixture)
from talktime.cli import app


def test_the_text_statement_names_its_currency(cli: CliRunner, engine: sa.Engine) -> None:
    made = cli.invoke(app, ["accounts", "create", "Acme", "--plan", "startup", "--json"])
    account = json.loads(made.stdout)
    result = cli.invoke(app, ["statement", str(account["id"]), account["period_start"][:7]])
    assert result.exit_code == 0, result.output
    assert f"Acme {account['period_start'][:7]} ({account['currency']})" in result.output


def test_usage_refuses_csv_and_json_together(cli: CliRunner, engine: sa.Engine) -> None:
    made = cli.invoke(app, ["accounts", "create", "Acme", "--plan", "startup", "--json"])
    account = str(json.loads(made.stdout)["id"])
    out = refused(cli.invoke(app, ["usage", account, "--csv", "--json"]), "invalid_request")
    assert "give --csv or --json, not both" in out
    assert cli.invoke(app, ["usage", account, "--csv"]).stdout == "count,quantity,amount\n"
