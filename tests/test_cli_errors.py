"""CLI refusals are an `error[code]: sentence` line and exit 1, never a traceback: ids beyond
what the database holds, an output file that cannot be written, a `--plugin` that cannot be
imported, and text that rich would read as markup. And `talktime statement` never cuts an
amount short, however narrow the terminal."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (wide_cli: the `cli` fixture)
from talktime import money
from talktime.cli import app
from talktime.ops import jobs
from talktime.ops.statements import statement
from talktime.store.api_tables import api_keys
from talktime.wallet import Wallet

from ops_helpers import make_account

# The modules: `talktime.cli.app` as an attribute is the Typer app of that name.
ops_cli = sys.modules["talktime.cli.ops"]

MAX_ID = 2**62
SEPT = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "create", "{id}"],
        ["statement", "{id}", "2026-11"],
        ["usage", "{id}"],
        ["jobs", "--retry", "{id}"],
    ],
    ids=["keys-create", "statement", "usage", "jobs-retry"],
)
@pytest.mark.parametrize("bad", [10**20, MAX_ID + 1, 0])
def test_ids_out_of_range_are_refused_before_the_database(
    cli: CliRunner, engine: sa.Engine, command: list[str], bad: int
) -> None:
    args = [arg.replace("{id}", str(bad)) for arg in command]
    message = refused(cli.invoke(app, args), "invalid_request")
    assert f"id {bad} is out of range" in message
    assert "from 1 to 2^62" in message
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar() == 0


def test_the_largest_id_reaches_the_database(cli: CliRunner, engine: sa.Engine) -> None:
    refused(cli.invoke(app, ["statement", str(MAX_ID), "2026-11"]), "account_not_found")
    refused(cli.invoke(app, ["keys", "create", str(MAX_ID)]), "account_not_found")
    retry = cli.invoke(app, ["jobs", "--retry", str(MAX_ID)])
    assert "has not failed" in refused(retry, "job_not_failed")


@pytest.mark.parametrize("output_format", ["pdf", "json", "csv"])
def test_statement_output_that_cannot_be_written_names_the_path(
    cli: CliRunner, engine: sa.Engine, tmp_path: Path, output_format: str
) -> None:
    account = make_account(engine)
    for target in [tmp_path / "no" / "such" / "dir" / "x.out", tmp_path]:
        result = cli.invoke(
            app,
            ["statement", str(account), "2026-11", "--format", output_format, "-o", str(target)],
        )
        message = refused(result, "output_not_writable")
        assert f"cannot write '{target}'" in message
    assert not (tmp_path / "no").exists()


def test_worker_plugin_that_does_not_exist_is_named(cli: CliRunner, engine: sa.Engine) -> None:
    for plugin, missing in [("nonexistent.module", "nonexistent"), ("json.nope", "json.nope")]:
        message = refused(
            cli.invoke(app, ["worker", "--plugin", plugin, "--once"]), "plugin_not_found"
        )
        assert f"--plugin '{plugin}': there is no module '{missing}'" in message
    bad_name = cli.invoke(app, ["worker", "--plugin", ".relative", "--list"])
    assert "'.relative' is not a module name" in refused(bad_name, "plugin_not_found")


def test_worker_plugin_whose_import_fails_is_named(
    cli: CliRunner, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "needs_a_missing_dependency.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = cli.invoke(app, ["worker", "--plugin", "needs_a_missing_dependency", "--list"])
    message = refused(result, "plugin_import_failed")
    assert "'needs_a_missing_dependency' could not be imported" in message
    assert "no_such_dependency_xyz" in message


def test_markup_in_names_and_job_errors_is_printed_as_written(
    cli: CliRunner, engine: sa.Engine
) -> None:
    account = make_account(engine, "Acme [/] [bold]Ltd")
    result = cli.invoke(app, ["statement", str(account), "2026-11"])
    assert result.exit_code == 0, result.exception
    assert "Acme [/] [bold]Ltd 2026-11" in result.output
    with engine.begin() as conn:
        jobs.enqueue(conn, "kind[/]", {})
    listed = cli.invoke(app, ["jobs"])
    assert listed.exit_code == 0, listed.exception
    assert "kind[/]" in listed.output


def rich_account(engine: sa.Engine) -> int:
    """An account whose September 2026 amounts run to 21 characters: 4 x 2^62 micro-units of
    purchased credit (18446744073709.551616) and 2^62 of promotional credit."""
    wallet = Wallet(engine)
    wallet.upsert_plan("none", 0, now=SEPT)
    account = wallet.create_account("Whale", "none", "create", now=SEPT).account.id
    for n in range(4):
        wallet.grant(account, "purchased", 2**62, f"buy-{n}", now=SEPT)
    wallet.grant(account, "promotional", 2**62, "promo", now=SEPT)
    return account


def text_statement(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, account: int, width: int
) -> str:
    """`talktime statement ACCOUNT 2026-09` on a terminal `width` columns wide."""
    monkeypatch.setattr(ops_cli, "console", Console(width=width))
    result = cli.invoke(app, ["statement", str(account), "2026-09"])
    assert result.exit_code == 0, result.exception
    assert max(len(line) for line in result.output.splitlines()) <= width
    return result.output


def amount_columns(output: str) -> list[str]:
    """Each amount column's cells from top to bottom, joined: a folded amount joins up again."""
    rows = [line.strip("│").split("│") for line in output.splitlines() if line.startswith("│")]
    assert all(len(row) == 4 for row in rows), output
    return ["".join(row[i].strip() for row in rows) for i in (1, 2, 3)]


def test_statement_text_at_80_columns_shows_large_amounts_whole(
    cli: CliRunner, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = text_statement(cli, monkeypatch, rich_account(engine), 80)
    assert "…" not in output
    for amount in ["18446744073709.551616", "4611686018427.387904", "23058430092136.93952"]:
        assert f" {amount} │" in output, output  # whole, on one line


def test_statement_text_never_loses_a_digit_at_any_width(
    cli: CliRunner, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = rich_account(engine)
    stmt = statement(engine, account, "2026-09")
    rows = [(stmt.opening_free, stmt.opening_paid)]
    rows += [(line.free, line.paid) for line in stmt.lines]
    rows.append((stmt.closing_free, stmt.closing_paid))
    expected = [
        "".join(money.format(free) for free, _ in rows),
        "".join(money.format(paid) for _, paid in rows),
        "".join(money.format(free + paid) for free, paid in rows),
    ]
    assert "18446744073709.551616" in expected[1]
    for width in [120, 100, 81, 80, 79, 70, 60, 50, 40]:
        output = text_statement(cli, monkeypatch, account, width)
        assert "…" not in output, (width, output)
        assert amount_columns(output) == expected, (width, output)


def test_a_text_statement_with_output_is_written_to_the_file(
    cli: CliRunner, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # -o was ignored for text: the table went to the terminal and no file was written
    account = rich_account(engine)
    shown = text_statement(cli, monkeypatch, account, 100)
    target = tmp_path / "statement.txt"
    result = cli.invoke(app, ["statement", str(account), "2026-09", "-o", str(target)])
    assert result.exit_code == 0, result.exception
    assert f"wrote {target}" in result.output
    assert "18446744073709.551616" not in result.output
    assert target.read_text() == shown


def test_the_jobs_table_keeps_kinds_and_times_whole_at_80_columns(
    cli: CliRunner, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # at 80 columns the kind and the run time were cut: "webhooks.de…", "2026-11-30T0…"
    with engine.begin() as conn:
        jobs.enqueue(conn, "webhooks.deliver", {"delivery_id": 1}, run_at=1_795_000_000_000_000)
    monkeypatch.setattr(ops_cli, "console", Console(width=80))
    result = cli.invoke(app, ["jobs"])
    assert result.exit_code == 0, result.exception
    assert "…" not in result.output
    assert "webhooks.deliver" in result.output
    assert "2026-11-18" in result.output
    assert "11:06:40" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_a_statement_with_output_dash_goes_to_standard_output(
    cli: CliRunner, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # -o - wrote a file named "-"
    account = rich_account(engine)
    monkeypatch.chdir(tmp_path)
    pdf = cli.invoke(app, ["statement", str(account), "2026-09", "--format", "pdf", "-o", "-"])
    assert pdf.exit_code == 0, pdf.exception
    assert pdf.stdout_bytes.startswith(b"%PDF-")
    csv = cli.invoke(app, ["statement", str(account), "2026-09", "--format", "csv", "-o", "-"])
    assert csv.exit_code == 0, csv.exception
    assert csv.stdout.startswith("section,")
    assert "wrote" not in csv.stdout
    assert not (tmp_path / "-").exists()
