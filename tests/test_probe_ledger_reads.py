"""Reading money back out: the ledger's priced lines of a rental renewal carry decimal strings,
an unknown ledger `kind` is refused instead of read as "no entries", and the CLI's text
statement shows the uncollected amount the other formats show."""

from __future__ import annotations

import sys
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from talktime import money
from talktime.api.routes.balance import LedgerKind
from talktime.cli import app
from talktime.wallet import Wallet
from talktime.wallet.cycle import run_cycle
from talktime.wallet.errors import InvalidRequestError
from talktime.wallet.model import ENTRY_KINDS

from apikit import tenant

ops_cli = sys.modules["talktime.cli.ops"]
SEPT = datetime(2026, 9, 1, tzinfo=UTC)


def test_a_renewed_rental_in_the_ledger_shows_its_money_as_decimal_strings(api: Any) -> None:
    t = tenant(api, credit="5.00")
    period_end = datetime.fromisoformat(t.balance()["period_end"])
    run_cycle(api.app.state.engine, period_end + timedelta(minutes=5))
    rentals = t.ledger(kind="usage", reference=f"number:{t.number}")
    assert len(rentals) == 2  # the first month (when added) and the renewal
    first, renewal = rentals[1]["lines"][0], rentals[0]["lines"][0]
    assert renewal["amount"] == first["amount"] == "1.0000"  # was 1000000 (micro-units)
    for field in ("kind", "description", "quantity", "unit", "unit_price", "rounding", "rate"):
        assert renewal[field] == first[field], field
    assert renewal["period_start"] == period_end.isoformat()


def test_an_unknown_ledger_kind_is_a_422_naming_the_kinds_not_an_empty_page(api: Any) -> None:
    t = tenant(api, credit="5.00")
    assert t.ledger(kind="usage")  # the rental
    for kind in ("usages", "charge", "USAGE", ""):
        response = t.get("/v1/ledger", kind=kind)
        assert response.status_code == 422, (kind, response.text)
        problem = response.json()
        assert problem["code"] == "invalid_request"
        assert "'hold_release'" in problem["detail"]


def test_a_ledger_range_whose_until_is_not_after_its_since_is_a_422_not_an_empty_page(
    api: Any,
) -> None:
    t = tenant(api, credit="5.00")
    swapped = ("2030-01-01T00:00:00Z", "2020-01-01T00:00:00Z")
    empty = ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    for since, until in (swapped, empty):
        response = t.get("/v1/ledger", since=since, until=until)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_request"
        assert "`until` must be after `since`" in response.json()["detail"]
    wide = t.get("/v1/ledger", since="2000-01-01T00:00:00Z", until="2100-01-01T00:00:00Z")
    assert wide.status_code == 200
    assert wide.json()["entries"]


def test_a_swapped_ledger_or_usage_range_is_a_422_naming_until(api: Any) -> None:
    t = tenant(api, credit="5.00")
    for path in ("/v1/ledger", "/v1/usage"):
        response = t.get(path, since="2030-01-01T00:00:00Z", until="2020-01-01T00:00:00Z")
        assert response.status_code == 422, response.text
        problem = response.json()
        assert "`until` must be after `since`" in problem["detail"]
        assert problem["field"] == "until", path


def test_the_api_takes_every_ledger_kind_the_wallet_writes() -> None:
    literal = typing.get_args(typing.get_args(LedgerKind)[0])[0]
    assert set(typing.get_args(literal)) == set(ENTRY_KINDS)


def test_the_embedded_ledger_refuses_an_unknown_kind(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme", "starter", "create", now=SEPT).account.id
    assert [e.kind for e in wallet.ledger(account, kind="grant").entries] == ["grant"]
    with pytest.raises(InvalidRequestError, match="not a ledger entry kind"):
        wallet.ledger(account, kind="grants")
    with pytest.raises(InvalidRequestError, match="`until` must be after `since`"):
        wallet.ledger(account, since=SEPT + timedelta(days=1), until=SEPT)


def test_the_cli_text_statement_shows_the_uncollected_amount(
    cli: CliRunner, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme", "starter", "create", now=SEPT).account.id
    at = SEPT + timedelta(days=1)
    hold = wallet.authorize(
        account, 500_000, "auth", timedelta(hours=1), reference="call_1", now=at
    ).hold.id
    wallet.settle(hold, 3 * money.DOLLAR, "settle", now=at)  # $1 covered, $2 uncollected
    monkeypatch.setattr(ops_cli, "console", Console(width=120))
    result = cli.invoke(app, ["statement", str(account), "2026-09"])
    assert result.exit_code == 0, result.exception
    row = next(line for line in result.output.splitlines() if "Uncollected" in line)
    assert row.split("│")[-2].strip() == "2.0000"
    csv_out = cli.invoke(app, ["statement", str(account), "2026-09", "--format", "csv"])
    assert "uncollected,Uncollected (not covered by credit),0.0000,2.0000,2.0000," in (
        csv_out.output
    )
