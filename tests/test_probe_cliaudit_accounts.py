"""`talktime accounts` lists the accounts with `--json` and `--limit N`, as the README says
(they were only options of `talktime accounts list`)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (the `cli` fixture)
from talktime.cli import app


def test_talktime_accounts_takes_json_and_limit_as_the_readme_says(
    cli: CliRunner, engine: sa.Engine
) -> None:
    for name in ("first", "second"):
        assert cli.invoke(app, ["accounts", "create", name, "--plan", "startup"]).exit_code == 0
    result = cli.invoke(app, ["accounts", "--json", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert [a["name"] for a in json.loads(result.stdout)] == ["second"]
    assert json.loads(cli.invoke(app, ["accounts", "--json"]).stdout)[0]["name"] == "first"
    before = cli.invoke(app, ["accounts", "list", "--json"]).stdout
    refused(
        cli.invoke(app, ["accounts", "--json", "create", "x", "--plan", "startup"]),
        "invalid_request",
    )
    assert cli.invoke(app, ["accounts", "list", "--json"]).stdout == before
