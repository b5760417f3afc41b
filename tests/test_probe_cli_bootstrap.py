"""`talktime accounts create` and `talktime keys create` refuse what the database could not
store (a name that is not UTF-8, a key name longer than its column, a credit beyond the
wallet's bound) with `error[code]: sentence` and nothing written, alike on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (wide_cli: the `cli` fixture)
from talktime.cli import app
from talktime.store.api_tables import api_keys
from talktime.store.wallet_tables import accounts

from ops_helpers import make_account

NOT_UTF8 = "caf\udce9"  # b"caf\xe9" (Latin-1) as Python hands a command-line argument on


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_an_account_name_that_is_not_utf8_is_refused_and_creates_nothing(
    cli: CliRunner, engine: sa.Engine
) -> None:
    result = cli.invoke(app, ["accounts", "create", NOT_UTF8, "--plan", "business"])
    assert "account name is not valid UTF-8: byte 0xE9 at character 3" in refused(
        result, "invalid_text"
    )
    assert count(engine, accounts) == 0


def test_a_key_name_that_is_not_utf8_is_refused_and_creates_no_key(
    cli: CliRunner, engine: sa.Engine
) -> None:
    account = make_account(engine)
    result = cli.invoke(app, ["keys", "create", str(account), "--name", NOT_UTF8])
    assert "key name is not valid UTF-8" in refused(result, "invalid_text")
    assert count(engine, api_keys) == 0


def test_a_key_name_longer_than_200_characters_is_refused_on_both_backends(
    cli: CliRunner, engine: sa.Engine
) -> None:
    account = make_account(engine)
    result = cli.invoke(app, ["keys", "create", str(account), "--name", "n" * 201])
    assert "--name is 201 characters long; a key name has at most 200" in refused(
        result, "invalid_request"
    )
    assert count(engine, api_keys) == 0
    fits = cli.invoke(app, ["keys", "create", str(account), "--name", "é" * 200])
    assert fits.exit_code == 0, fits.output
    assert count(engine, api_keys) == 1


def test_a_credit_beyond_the_wallet_bound_is_refused_in_money_not_micro_units(
    cli: CliRunner, engine: sa.Engine
) -> None:
    result = cli.invoke(
        app, ["accounts", "create", "Acme", "--plan", "business", "--credit", "9223372036854"]
    )
    message = refused(result, "invalid_amount")
    assert "--credit: '9223372036854' is too large; give at most 4611686018427.387904" in message
    assert "9223372036854000000" not in message
    assert count(engine, accounts) == 0
