"""`talktime verify` exits 0 on a clean database and 1 naming the account on a breach."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import get_settings
from talktime.store.wallet_tables import grants
from talktime.wallet import Wallet
from wallet_helpers import FREE, PLAN


def test_verify_is_clean_then_names_the_account_with_a_breach(
    db_url: str, engine: sa.Engine, monkeypatch: object
) -> None:
    wallet = Wallet(engine)  # the real clock: the CLI verifies at the real now
    wallet.upsert_plan(PLAN, FREE)
    account = wallet.create_account("Acme", PLAN, "k").account.id
    wallet.charge(account, 1_000, "c")
    monkeypatch.setenv("TALKTIME_DATABASE_URL", db_url)  # type: ignore[attr-defined]
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        clean = runner.invoke(app, ["verify"])
        assert clean.exit_code == 0, clean.output
        with engine.begin() as conn:  # tamper: credit without a ledger entry
            conn.execute(sa.update(grants).values(remaining=grants.c.remaining + 1))
        broken = runner.invoke(app, ["verify", "--json"])
        assert broken.exit_code == 1
        assert f'"account_id": {account}' in broken.output
        assert "ledger_balance_mismatch" in broken.output
    finally:
        get_settings.cache_clear()


def test_verify_prints_each_breach_on_one_line_when_not_on_a_terminal(
    db_url: str, engine: sa.Engine, monkeypatch: object
) -> None:
    """Output to a file or a pipe was wrapped at 80 columns: one breach became two lines, the
    second without its `breach` prefix, which a cron job's grep missed."""
    wallet = Wallet(engine)
    wallet.upsert_plan(PLAN, FREE)
    account = wallet.create_account("Acme", PLAN, "k").account.id
    wallet.charge(account, 1_000, "c")
    monkeypatch.setenv("TALKTIME_DATABASE_URL", db_url)  # type: ignore[attr-defined]
    monkeypatch.delenv("COLUMNS", raising=False)  # type: ignore[attr-defined]
    get_settings.cache_clear()
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(grants).values(remaining=grants.c.remaining + 1))
        broken = CliRunner().invoke(app, ["verify"])
        assert broken.exit_code == 1
        lines = broken.stderr.splitlines()
        assert lines
        assert all(line.startswith("breach account ") for line in lines), lines
        assert max(len(line) for line in lines) > 80  # long enough to have been wrapped
    finally:
        get_settings.cache_clear()
