"""The README's quick start ("Billing API" -> "Quick start") with the real `talktime` command:
`talktime accounts create` prints the new account's id, `talktime keys create ACCOUNT` prints
an account key once and `talktime keys create --admin` an admin key; the app then takes those
keys as the README and its Security section say, on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from talktime import money
from talktime.api import create_app
from talktime.cli import app
from talktime.config import Settings
from talktime.rating import load_card

KEY = re.compile(r"tt_[A-Za-z0-9]+_[A-Za-z0-9_-]+")
"""`tt_<prefix>_<secret>` (README, Security)."""


@pytest.fixture
def cards_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The rate cards directory the command and the app share (never ./rate_cards)."""
    directory = str(tmp_path / "cards")
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", directory)
    return directory


@pytest.fixture
def served(cli: CliRunner, db_url: str, cards_dir: str) -> Iterator[TestClient]:
    """The app on the command's database, with no `admin_key` setting: only keys made by the
    command authenticate."""
    application = create_app(Settings(database_url=db_url, rate_cards_dir=cards_dir))
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client
        application.state.engine.dispose()


def talktime(cli: CliRunner, *args: str) -> str:
    """What `$(talktime ARGS)` captures: stdout, after checking the command succeeded."""
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception
    return result.stdout


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_quick_start_account_and_key_from_the_cli_serve_the_balance_and_a_message(
    cli: CliRunner, served: TestClient
) -> None:
    printed = talktime(cli, "accounts", "create", "Acme", "--plan", "business", "--credit", "25.00")
    assert re.fullmatch(r"[0-9]+\n", printed), printed  # the id alone, as `$(...)` needs it
    account = printed.strip()
    printed = talktime(cli, "keys", "create", account)
    assert KEY.fullmatch(printed.strip()), printed  # the key alone, on one line
    key = printed.strip()
    free = money.format(load_card("default").plans["business"])
    assert free == "10.0000"  # the shipped card's business plan ("Up to $10 ... every month")

    balance = served.get("/v1/balance", headers=bearer(key))
    assert balance.status_code == 200, balance.text
    body = balance.json()
    assert (body["currency"], body["paid"], body["free"]) == ("USD", "25.0000", free)
    assert (body["held"], body["available"]) == ("0.0000", "35.0000")

    # the rest of the quick start, with the answer the README shows
    auth = bearer(key)
    user = served.post("/v1/users", json={"name": "Ada"}, headers=auth)
    assert user.status_code == 201, user.text
    number = served.post(
        "/v1/numbers",
        json={"e164": "+14155550100"},
        headers={**auth, "Idempotency-Key": "number-1"},
    )
    assert number.status_code == 201, number.text
    sms = served.post(
        "/v1/messages",
        json={
            "from": "+14155550100",
            "to": "+14155550111",
            "text": "Your code is 1234",
            "user": user.json()["id"],
        },
        headers={**auth, "Idempotency-Key": "sms-1"},
    )
    assert sms.status_code == 201, sms.text
    sent = sms.json()
    assert (sent["encoding"], sent["segments"], sent["amount"]) == ("GSM-7", 1, "0.0100")
    assert (sent["from_free"], sent["from_paid"]) == ("0.0100", "0.0000")
    after = sent["balance"]
    assert (after["free"], after["paid"], after["available"]) == ("8.9900", "25.0000", "33.9900")
    again = served.get("/v1/balance", headers=auth).json()
    assert (again["free"], again["paid"], again["available"]) == ("8.9900", "25.0000", "33.9900")


def test_a_cli_admin_key_works_on_admin_routes_and_is_refused_on_account_routes(
    cli: CliRunner, served: TestClient
) -> None:
    account = talktime(cli, "accounts", "create", "Acme", "--plan", "business", "--credit", "25.00")
    account_key = talktime(cli, "keys", "create", account.strip()).strip()
    printed = talktime(cli, "keys", "create", "--admin")
    assert KEY.fullmatch(printed.strip()), printed
    admin_key = printed.strip()
    assert admin_key != account_key

    shown = served.get(f"/v1/admin/accounts/{account.strip()}", headers=bearer(admin_key))
    assert shown.status_code == 200, shown.text
    assert (shown.json()["id"], shown.json()["name"]) == (int(account), "Acme")
    assert shown.json()["plan"] == "business"

    refused = served.get("/v1/balance", headers=bearer(admin_key))
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "account_key_required"
    not_admin = served.get(f"/v1/admin/accounts/{account.strip()}", headers=bearer(account_key))
    assert not_admin.status_code == 403, not_admin.text
    assert not_admin.json()["code"] == "admin_required"
