"""`talktime accounts create` names no default card for `--rate-card ''` (refused like any
unknown card, nothing created) and refuses an unknown plan naming the card's plans."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (wide_cli: the `cli` fixture)
from talktime.cli import app
from talktime.store.wallet_tables import accounts


def _accounts(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one())


def test_an_empty_rate_card_is_refused_and_creates_no_account(
    cli: CliRunner, engine: sa.Engine
) -> None:
    args = ["accounts", "create", "Acme", "--plan", "startup", "--rate-card", ""]
    output = refused(cli.invoke(app, args), "rate_card_not_found")
    assert "'' is not a rate card name" in output
    assert _accounts(engine) == 0


def test_an_unknown_plan_is_refused_naming_the_plans_of_the_card(
    cli: CliRunner, engine: sa.Engine
) -> None:
    args = ["accounts", "create", "Acme", "--plan", "gold", "--rate-card", "passthrough"]
    output = refused(cli.invoke(app, args), "plan_not_found")
    assert (
        "rate card 'passthrough' has no plan 'gold'; "
        "choose one of 'business', 'professional', 'startup'"
    ) in output
    assert _accounts(engine) == 0
