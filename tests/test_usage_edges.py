"""Edges of usage reports and statements: times past the accepted range, unknown accounts,
reference prefixes matched case-sensitively on both backends, and the worker's lease bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from talktime import money
from talktime.cli import app
from talktime.ops import usage as usage_module
from talktime.ops.clock import from_datetime
from talktime.ops.statements import statement
from talktime.ops.usage import default_range, usage
from talktime.wallet import Wallet

from apikit import tenant

SEPT = datetime(2026, 9, 1, tzinfo=UTC)

OUT_OF_RANGE = [
    ("0001-01-01T00:00:00+01:00", "0001-06-01T00:00:00+01:00"),
    ("9999-12-31T23:00:00-01:00", "9999-12-31T23:59:59-01:00"),
    ("1969-12-31T23:00:00+00:00", "1970-01-02T00:00:00+00:00"),
    ("8999-12-31T00:00:00+00:00", "9000-01-01T00:00:01+00:00"),
]


def _account(engine: sa.Engine) -> int:
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", 10 * money.DOLLAR, now=SEPT)
    return wallet.create_account("Acme", "starter", "create", now=SEPT).account.id


@pytest.mark.parametrize(("since", "until"), OUT_OF_RANGE)
def test_usage_api_refuses_times_outside_1970_to_8999_in_json_and_csv(
    api: Any, since: str, until: str
) -> None:
    t = tenant(api, number=None)
    for accept in ("application/json", "text/csv"):
        response = t.client.get(
            "/v1/usage",
            params={"since": since, "until": until},
            headers={**t.auth, "Accept": accept},
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "invalid_usage_query"
        assert "1970-01-01 to 9000-01-01" in problem["detail"]


def test_usage_api_accepts_the_edges_of_the_range(api: Any) -> None:
    t = tenant(api, number=None)
    first = t.get("/v1/usage", since="1970-01-01T00:00:00Z", until="1970-01-02T00:00:00Z")
    assert first.status_code == 200, first.text
    assert first.json()["since"] == "1970-01-01T00:00:00Z"
    last = t.get("/v1/usage", since="8999-12-31T00:00:00Z", until="9000-01-01T00:00:00Z")
    assert last.status_code == 200, last.text
    assert last.json()["until"] == "9000-01-01T00:00:00Z"


@pytest.mark.parametrize(("since", "until"), OUT_OF_RANGE[:2])
def test_usage_cli_refuses_times_outside_the_range(
    cli: CliRunner, engine: sa.Engine, since: str, until: str
) -> None:
    account = _account(engine)
    result = cli.invoke(app, ["usage", str(account), "--since", since, "--until", until])
    assert result.exit_code == 1, result.output
    assert "error[invalid_usage_query]" in result.output
    assert "Traceback" not in result.output


def test_usage_cli_since_the_epoch_is_not_taken_for_the_default(
    cli: CliRunner, engine: sa.Engine
) -> None:
    account = _account(engine)
    Wallet(engine).charge(account, 10_000, "m1", reference="msg_1", now=SEPT)
    # 1970-01-01T00:00Z is 0 microseconds; it was mistaken for "no --since" (this month).
    result = cli.invoke(
        app, ["usage", str(account), "--since", "1970-01-01", "--until", "1970-12-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == []


def test_usage_cli_refuses_an_unknown_account_like_statement(
    cli: CliRunner, engine: sa.Engine
) -> None:
    _account(engine)
    result = cli.invoke(app, ["usage", "999999"])
    assert result.exit_code == 1, result.output
    assert "error[account_not_found]" in result.output
    assert "no account 999999" in result.output
    with pytest.raises(Exception, match="no account 999999"):
        usage(engine, 999999, from_datetime(SEPT), from_datetime(SEPT + timedelta(days=1)))


def test_channel_prefixes_are_case_sensitive_in_statements_and_usage(engine: sa.Engine) -> None:
    account = _account(engine)
    wallet = Wallet(engine)
    charges = [
        ("msg_1", 10_000),
        ("call_1", 20_000),
        ("number:+14155550100", 30_000),
        ("MSG_upper", 1_000),
        ("CALL_x", 2_000),
        ("Number:+14155550101", 4_000),
        ("Msg_mixed", 8_000),
        ("msg-dash", 16_000),  # not `msg_`: the underscore is no wildcard
    ]
    for n, (reference, amount) in enumerate(charges):
        wallet.charge(account, amount, f"c{n}", reference=reference, now=SEPT + timedelta(hours=n))
    stmt = statement(engine, account, "2026-09")
    used = {line.label: -line.total for line in stmt.lines if line.section == "usage"}
    assert used == {
        "SMS": 10_000,
        "Calls": 20_000,
        "Phone numbers": 30_000,
        "Other usage": 1_000 + 2_000 + 4_000 + 8_000 + 16_000,
    }
    groups = usage(
        engine,
        account,
        from_datetime(SEPT),
        from_datetime(SEPT + timedelta(days=1)),
        ["channel"],
    )
    # The usage report's rentals come from the ledger (`number:` entries) and must agree with
    # the statement's "Phone numbers" line; messages and calls come from their own tables.
    assert [(g.key, g.count, g.amount) for g in groups] == [(("number",), 1, 30_000)]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "1e12", "86400.5", "0.05"])
def test_worker_refuses_a_lease_that_is_not_finite_or_out_of_bounds(
    cli: CliRunner, value: str
) -> None:
    result = cli.invoke(app, ["worker", "--once", "--lease-seconds", value])
    assert result.exit_code == 1, result.output
    assert "error[invalid_lease]" in result.output
    assert "0.1 to 86400" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "3600.5", "0.001"])
def test_worker_refuses_a_poll_that_is_not_finite_or_out_of_bounds(
    cli: CliRunner, value: str
) -> None:
    result = cli.invoke(app, ["worker", "--once", "--poll-seconds", value])
    assert result.exit_code == 1, result.output
    assert "error[invalid_poll]" in result.output
    assert "0.01 to 3600" in result.output
    assert "Traceback" not in result.output


def test_usage_api_with_only_an_earlier_until_reports_the_month_it_falls_in(api: Any) -> None:
    # `since` defaulted to this month's start even then, and the report was refused because
    # "`until` must be after `since`", a `since` the caller never gave
    t = tenant(api, number=None)
    report = t.get("/v1/usage", until="2026-09-15T12:00:00Z")
    assert report.status_code == 200, report.text
    assert report.json()["since"] == "2026-09-01T00:00:00Z"
    assert report.json()["until"] == "2026-09-15T12:00:00Z"
    # an `until` on a month's first instant ends the month before it
    edge = t.get("/v1/usage", until="2026-10-01T00:00:00Z")
    assert edge.json()["since"] == "2026-09-01T00:00:00Z"


def test_usage_cli_with_only_an_earlier_until_reports_the_month_it_falls_in(
    cli: CliRunner, engine: sa.Engine
) -> None:
    account = _account(engine)
    wallet = Wallet(engine)
    rent = "number:+14155550100"  # rentals come from the ledger
    wallet.charge(account, 10_000, "r1", reference=rent, now=SEPT + timedelta(days=2))
    wallet.charge(account, 10_000, "r2", reference=rent, now=SEPT + timedelta(days=20))  # after
    result = cli.invoke(app, ["usage", str(account), "--until", "2026-09-15", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["since"] == "2026-09-01T00:00:00Z"
    assert [row["count"] for row in report["rows"]] == [1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "foo"}, "group_by"),
        ({"group_by": "channel,channel"}, "group_by"),
        ({"since": "2025-01-01T00:00:00Z", "until": "2026-09-01T00:00:00Z"}, "since"),
    ],
)
def test_usage_api_refusals_name_the_parameter(
    api: Any, params: dict[str, str], field: str
) -> None:
    t = tenant(api, number=None)
    response = t.get("/v1/usage", **params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_usage_query"
    assert response.json()["field"] == field


def test_usage_api_with_only_an_until_out_of_range_is_a_422_naming_until(api: Any) -> None:
    # the default `since` was worked out from it first: a 500 ("year 10000 is out of range")
    t = tenant(api, number=None)
    response = t.get("/v1/usage", until="9999-12-31T23:00:00-05:00")
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("invalid_usage_query", "until")


def test_usage_default_since_is_exact_far_from_the_epoch() -> None:
    # a float division put 3000-03-01T00:00Z in March, so `since` equalled `until` (refused)
    until = from_datetime(datetime(3000, 3, 1, tzinfo=UTC))
    since, end = default_range(0, None, until)
    assert (since, end) == (from_datetime(datetime(3000, 2, 1, tzinfo=UTC)), until)


def test_a_usage_report_over_the_item_bound_names_since(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = tenant(api, credit="5.00")  # its number's first month: one item this month
    monkeypatch.setattr(usage_module, "MAX_ROWS", 0)
    response = t.get("/v1/usage")
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "since"
