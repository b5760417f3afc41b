"""Report times read alike by `GET /v1/usage` and `talktime usage`: one text, one moment, so
the API and the CLI give the same figures; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from typer.testing import CliRunner

from talktime.cli import app

from apikit import tenant


def _this_month() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def test_a_basic_iso_date_is_that_day_in_the_api_as_in_the_cli(api: Any, cli: CliRunner) -> None:
    t = tenant(api, credit="5.00")
    assert t.sms("+14155550111").status_code == 201
    start, end = _this_month()
    since, until = start.strftime("%Y%m%d"), end.strftime("%Y%m%d")  # ISO 8601 basic format
    response = t.get("/v1/usage", since=since, until=until)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["since"], body["until"]) == (
        start.strftime("%Y-%m-%dT00:00:00Z"),
        end.strftime("%Y-%m-%dT00:00:00Z"),
    )
    assert body["rows"] == [{"count": 2, "quantity": 2, "amount": "1.0100"}]  # number + SMS
    result = cli.invoke(
        app, ["usage", str(t.account_id), "--since", since, "--until", until, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == body  # the same report: currency and range included


def test_a_unix_timestamp_is_refused_with_a_sentence_not_read_as_1970(api: Any) -> None:
    t = tenant(api, credit="5.00")
    for value in ("1790000000", "20261001.5", "-1"):
        response = t.get("/v1/usage", since=value)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "invalid_request"
        assert "or a date such as 2026-10-01" in problem["detail"]
        assert "not a Unix timestamp" in problem["detail"]


def test_an_offset_and_a_plain_date_are_still_read_as_before(api: Any) -> None:
    t = tenant(api, number=None)
    response = t.get(
        "/v1/usage", since="2026-10-01T00:00:00+02:00", until="2026-10-02T00:00:00-14:00"
    )
    assert response.status_code == 200, response.text
    assert (response.json()["since"], response.json()["until"]) == (
        "2026-09-30T22:00:00Z",
        "2026-10-02T14:00:00Z",
    )
    spaced = t.get("/v1/usage", since="2026-10-01T00:00:00 02:00")  # an unencoded '+'
    assert spaced.status_code == 422
    assert "%2B" in spaced.json()["detail"]
