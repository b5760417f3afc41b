"""The low-balance threshold over the API and the CLI: set on creation, by an admin PATCH or by
the account's own `PUT /v1/settings/low-balance`, shown by `GET /v1/balance` and the admin
account, and a send that crosses it queues exactly one `balance.low` (which reaches a webhook
endpoint subscribed to it). Before, only the embedded wallet could set it, so over the API the
event was never sent. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (wide_cli: the `cli` fixture)
from talktime import money
from talktime.api import create_app
from talktime.cli import app
from talktime.config import Settings
from talktime.ops import tasks
from talktime.wallet import Wallet

from apikit import ADMIN, ADMIN_KEY, Tenant, account_with_key, idem, set_status, tenant

URL = "/v1/settings/low-balance"


def _put(t: Tenant, body: dict[str, Any]) -> httpx.Response:
    return t.client.put(URL, json=body, headers=t.auth)


def _patch(t: Tenant, body: dict[str, Any], account_id: int | None = None) -> httpx.Response:
    path = f"/v1/admin/accounts/{account_id or t.account_id}"
    return t.client.patch(path, json=body, headers={**ADMIN, **idem()})


def _lows(wallet: Wallet, account_id: int) -> list[dict[str, Any]]:
    """The payloads of the account's `balance.low` outbox events, oldest first."""
    return [e["payload"] for e in wallet.events(account_id, "balance.low")]


def _sms(t: Tenant) -> None:
    response = t.sms("+14155550111")
    assert response.status_code == 201, response.text


def test_a_send_crossing_the_threshold_set_over_the_api_queues_exactly_one_balance_low(
    api: Any, wallet: Wallet
) -> None:
    t = tenant(api, credit="2.00")
    threshold = t.balance()["available"]  # the first send takes available under it
    response = _put(t, {"low_balance_threshold": threshold})
    assert response.status_code == 200, response.text
    assert response.json()["low_balance_threshold"] == threshold
    assert t.balance()["low_balance_threshold"] == threshold
    assert _lows(wallet, t.account_id) == []
    _sms(t)
    after_first = money.parse(t.balance()["available"])
    _sms(t)  # already under the threshold: no second event
    assert _lows(wallet, t.account_id) == [
        {"account_id": t.account_id, "available": after_first, "threshold": money.parse(threshold)}
    ]


def test_a_webhook_endpoint_subscribed_to_balance_low_gets_the_event_of_a_send(
    db_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=db_url,
        admin_key=ADMIN_KEY,
        rate_cards_dir=str(tmp_path / "cards"),
        webhooks_allow_private=True,
    )
    hooked = create_app(settings)
    with TestClient(hooked, raise_server_exceptions=False) as api:
        t = tenant(api, credit="2.00")
        made = api.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/hooks", "event_types": ["balance.low"]},
            headers=t.auth,
        )
        assert made.status_code == 201, made.text
        assert _put(t, {"low_balance_threshold": t.balance()["available"]}).status_code == 200
        _sms(t)
        _sms(t)
        tasks.dispatch_outbox(hooked.state.engine, "test")
        deliveries = t.get(f"/v1/webhooks/endpoints/{made.json()['id']}/deliveries")
    hooked.state.engine.dispose()
    assert deliveries.status_code == 200, deliveries.text
    assert [d["event_type"] for d in deliveries.json()] == ["balance.low"]


def test_a_null_threshold_turns_balance_low_off(api: Any, wallet: Wallet) -> None:
    t = tenant(api, credit="2.00")
    assert _put(t, {"low_balance_threshold": t.balance()["available"]}).status_code == 200
    response = _put(t, {"low_balance_threshold": None})
    assert response.status_code == 200, response.text
    assert response.json()["low_balance_threshold"] is None
    assert t.balance()["low_balance_threshold"] is None
    _sms(t)
    assert _lows(wallet, t.account_id) == []


def test_an_admin_sets_the_threshold_on_creation_and_changes_or_removes_it_by_patch(
    api: Any, wallet: Wallet
) -> None:
    body = {"name": "acme", "plan": "startup", "credit": "2", "low_balance_threshold": "5.00"}
    created = api.post("/v1/admin/accounts", json=body, headers={**ADMIN, **idem()})
    assert created.status_code == 201, created.text
    assert created.json()["low_balance_threshold"] == "5.0000"
    account_id = created.json()["id"]
    path = f"/v1/admin/accounts/{account_id}"
    assert api.get(path, headers=ADMIN).json()["low_balance_threshold"] == "5.0000"

    status_only = api.patch(path, json={"status": "active"}, headers={**ADMIN, **idem()})
    assert status_only.json()["low_balance_threshold"] == "5.0000"  # left out: unchanged
    changed = api.patch(path, json={"low_balance_threshold": "1.5"}, headers={**ADMIN, **idem()})
    assert changed.status_code == 200, changed.text
    assert changed.json()["low_balance_threshold"] == "1.5000"
    assert wallet.account(account_id).low_balance_threshold == 1_500_000  # micro-units inside
    removed = api.patch(path, json={"low_balance_threshold": None}, headers={**ADMIN, **idem()})
    assert removed.status_code == 200, removed.text
    assert removed.json()["low_balance_threshold"] is None
    assert api.get(path, headers=ADMIN).json()["low_balance_threshold"] is None


def test_an_account_created_without_a_threshold_shows_null_everywhere(api: Any) -> None:
    t = tenant(api, number=None)
    assert t.balance()["low_balance_threshold"] is None
    account = api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN).json()
    assert account["low_balance_threshold"] is None


def test_a_replayed_patch_of_the_threshold_answers_the_original_and_another_value_is_409(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    headers = {**ADMIN, "Idempotency-Key": "lowbal-1"}
    path = f"/v1/admin/accounts/{t.account_id}"
    first = api.patch(path, json={"low_balance_threshold": "3"}, headers=headers)
    again = api.patch(path, json={"low_balance_threshold": "3"}, headers=headers)
    other = api.patch(path, json={"low_balance_threshold": None}, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.text == first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert t.balance()["low_balance_threshold"] == "3.0000"


def test_a_creation_replayed_with_another_threshold_is_409(api: Any) -> None:
    headers = {**ADMIN, "Idempotency-Key": "acct-lowbal"}
    body = {"name": "acme", "plan": "startup"}
    first = api.post("/v1/admin/accounts", json=body, headers=headers)
    other = api.post(
        "/v1/admin/accounts", json={**body, "low_balance_threshold": "5"}, headers=headers
    )
    assert first.status_code == 201, first.text
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"


BAD = ["-1", "abc", "+5", "5.", "0.0000001", "4611686018428", 5, 1.5, True]
"""Refused amounts: signed, malformed, too precise, over 2^62 micro-units, JSON numbers."""


@pytest.mark.parametrize("value", BAD)
def test_a_bad_threshold_is_422_naming_the_field_on_every_route_and_changes_nothing(
    api: Any, value: Any
) -> None:
    t = tenant(api, number=None)
    field = "low_balance_threshold"
    attempts = [
        _put(t, {field: value}),
        _patch(t, {field: value}),
        api.post(
            "/v1/admin/accounts",
            json={"name": "acme", "plan": "startup", field: value},
            headers={**ADMIN, **idem()},
        ),
    ]
    for answer in attempts:
        assert answer.status_code == 422, (value, answer.text)
        assert answer.json()["errors"][0]["field"] == field, answer.text
    assert t.balance()["low_balance_threshold"] is None
    listed = api.get(f"/v1/admin/accounts/{t.account_id + 1}", headers=ADMIN)
    assert listed.status_code == 404  # no account was created


def test_the_setting_route_requires_the_field_and_refuses_unknown_ones(api: Any) -> None:
    t = tenant(api, number=None)
    missing = _put(t, {})
    extra = _put(t, {"low_balance_threshold": "1", "threshold": "1"})
    assert missing.status_code == extra.status_code == 422
    assert missing.json()["errors"][0]["field"] == "low_balance_threshold"
    assert extra.json()["errors"][0]["field"] == "threshold"


def test_an_unknown_account_is_404_and_another_accounts_user_is_refused_unchanged(
    api: Any,
) -> None:
    owner = tenant(api, number=None)
    intruder = tenant(api, number=None)
    assert _put(owner, {"low_balance_threshold": "2"}).status_code == 200
    unknown = _patch(owner, {"low_balance_threshold": "1"}, account_id=owner.account_id + 1000)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    foreign = _put(intruder, {"low_balance_threshold": "1", "user": owner.user})
    assert foreign.status_code == 422
    assert foreign.json()["code"] == "unknown_user"
    tenant_on_admin = owner.client.patch(
        f"/v1/admin/accounts/{intruder.account_id}",
        json={"low_balance_threshold": "1"},
        headers={**owner.auth, **idem()},
    )
    assert tenant_on_admin.status_code == 403
    assert owner.balance()["low_balance_threshold"] == "2.0000"
    assert intruder.balance()["low_balance_threshold"] is None


def test_a_named_user_needs_billing_manage_to_set_the_threshold(api: Any) -> None:
    t = tenant(api, number=None)
    member = _put(t, {"low_balance_threshold": "1", "user": t.user})  # role member
    assert member.status_code == 403
    assert member.json()["code"] == "permission_denied"
    billing = api.post(
        "/v1/users", json={"name": "Bo", "role": "billing"}, headers={**t.auth, **idem()}
    )
    assert billing.status_code == 201, billing.text
    allowed = _put(t, {"low_balance_threshold": "1", "user": billing.json()["id"]})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["low_balance_threshold"] == "1.0000"


def test_cli_accounts_create_takes_a_low_balance_threshold(cli: CliRunner, api: Any) -> None:
    result = cli.invoke(
        app,
        ["accounts", "create", "acme", "--plan", "startup", "--low-balance-threshold", "5.00"],
    )
    assert result.exit_code == 0, result.output
    account_id = int(result.output.strip())
    account = api.get(f"/v1/admin/accounts/{account_id}", headers=ADMIN).json()
    assert account["low_balance_threshold"] == "5.0000"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("+5", "'+5' is not a decimal amount"),
        ("abc", "'abc' is not a decimal amount"),
        ("-1", "'-1' is negative"),
        ("4611686018428", "is too large"),
    ],
)
def test_cli_refuses_a_bad_low_balance_threshold_naming_the_option_and_creates_nothing(
    cli: CliRunner, value: str, said: str
) -> None:
    result = cli.invoke(
        app, ["accounts", "create", "acme", "--plan", "startup", f"--low-balance-threshold={value}"]
    )
    output = refused(result, "invalid_amount")
    assert "--low-balance-threshold: " in output
    assert said in output
    listed = cli.invoke(app, ["accounts", "--json"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.strip() == "[]"


def test_a_threshold_given_on_creation_is_in_the_accounts_own_balance(api: Any) -> None:
    body = {"name": "acme", "plan": "startup", "low_balance_threshold": "0.25"}
    _, key = account_with_key(api, body)
    balance = api.get("/v1/balance", headers={"Authorization": f"Bearer {key}"}).json()
    assert balance["low_balance_threshold"] == "0.2500"


def test_an_inactive_account_is_refused_the_setting_but_an_admin_can_still_patch_it(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    set_status(api, t.account_id, "canceled")
    refused_ = _put(t, {"low_balance_threshold": "1"})
    assert refused_.status_code == 403
    assert refused_.json()["code"] == "subscription_inactive"
    patched = _patch(t, {"low_balance_threshold": "1"})
    assert patched.status_code == 200, patched.text
    assert t.balance()["low_balance_threshold"] == "1.0000"
