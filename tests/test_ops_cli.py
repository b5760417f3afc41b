"""`talktime statement`, `talktime usage` and `talktime jobs` from the command line."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from talktime import money
from talktime.cli import app
from talktime.ops import jobs
from talktime.wallet import Wallet

SEPT = datetime(2026, 9, 1, tzinfo=UTC)


def _account(engine: sa.Engine) -> int:
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", 10 * money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme", "starter", "create", now=SEPT).account.id
    wallet.charge(account, 20_000, "n1", reference="number:+14155550100", now=SEPT)
    wallet.charge(account, 30_000, "m1", reference="msg_1", now=SEPT + timedelta(days=1))
    return account


def test_statement_prints_json_csv_and_writes_a_pdf(
    cli: CliRunner, engine: sa.Engine, tmp_path: Path
) -> None:
    account = _account(engine)
    as_json = cli.invoke(app, ["statement", str(account), "2026-09", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert doc["closing"]["free"] == "9.9500"
    as_csv = cli.invoke(app, ["statement", str(account), "2026-09", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert rows[-1]["section"] == "closing"
    target = tmp_path / "s.pdf"
    as_pdf = cli.invoke(
        app, ["statement", str(account), "2026-09", "--format", "pdf", "-o", str(target)]
    )
    assert as_pdf.exit_code == 0, as_pdf.output
    assert target.read_bytes().startswith(b"%PDF-")
    text = cli.invoke(app, ["statement", str(account), "2026-09"])
    assert "Closing balance" in text.output
    bad = cli.invoke(app, ["statement", str(account), "September"])
    assert bad.exit_code == 1
    assert "invalid_period" in bad.output
    missing = cli.invoke(app, ["statement", "999999", "2026-09"])
    assert "account_not_found" in missing.output


def test_usage_groups_rentals_by_channel(cli: CliRunner, engine: sa.Engine) -> None:
    account = _account(engine)
    args = ["usage", str(account), "--since", "2026-09-01", "--until", "2026-10-01"]
    result = cli.invoke(app, [*args, "--group-by", "channel", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "currency": "USD",
        "since": "2026-09-01T00:00:00Z",
        "until": "2026-10-01T00:00:00Z",
        "group_by": ["channel"],
        "rows": [{"channel": "number", "count": 1, "quantity": 1, "amount": "0.0200"}],
    }
    table = cli.invoke(app, [*args, "--group-by", "country"])
    assert "US" in table.output


def test_jobs_lists_failed_jobs_and_retries_them(cli: CliRunner, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        job_id = jobs.enqueue(conn, "x.kind", max_attempts=1)
    assert job_id is not None
    [job] = jobs.claim(engine, "w")
    jobs.fail(engine, job, "it broke")
    listed = cli.invoke(app, ["jobs", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["id"], row["state"], row["last_error"]) == (job_id, "failed", "it broke")
    with_state = cli.invoke(app, ["jobs", "--retry", str(job_id), "--state", "failed"])
    assert with_state.exit_code == 1, with_state.output  # --state was ignored
    assert "error[invalid_request]" in with_state.output
    retried = cli.invoke(app, ["jobs", "--retry", str(job_id), "--json"])
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.output) == {"id": job_id, "state": "pending"}  # was plain text
    assert [r.state for r in jobs.list_jobs(engine)] == ["pending"]
    assert cli.invoke(app, ["jobs", "--state", "nonsense"]).exit_code == 1
