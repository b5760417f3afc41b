"""An account whose subscription is not active: its key can still read, quote, revoke a key,
release a number and turn auto-recharge off (so a lapsed customer can see and stop what costs
money), while every change that sets the account up for more use is refused 403
`subscription_inactive` and changes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from apikit import Tenant, idem, set_status, tenant


def _put(t: Tenant, path: str, body: dict[str, Any]) -> httpx.Response:
    return t.client.put(path, json=body, headers={**t.auth, **idem()})


def _state(t: Tenant) -> tuple[Any, ...]:
    users = t.get("/v1/users").json()
    keys = t.get("/v1/keys").json()
    return (t.balance(), users, keys)


REFUSED: dict[str, Any] = {
    "a new user": lambda t: t.post("/v1/users", {"name": "Bo"}),
    "a user change": lambda t: t.client.patch(
        f"/v1/users/{t.user}", json={"name": "Ada L."}, headers={**t.auth, **idem()}
    ),
    "a new key": lambda t: t.post("/v1/keys", {"name": "ci"}),
    "a monthly limit": lambda t: _put(t, "/v1/settings/monthly-limit", {"monthly_limit": "50.00"}),
    "a low-balance threshold": lambda t: _put(
        t, "/v1/settings/low-balance", {"low_balance_threshold": "5.00"}
    ),
    "auto-recharge on": lambda t: _put(
        t, "/v1/settings/auto-recharge", {"enabled": True, "threshold": "5.00", "amount": "20.00"}
    ),
}


@pytest.mark.parametrize("status", ["past_due", "canceled"])
@pytest.mark.parametrize("change", list(REFUSED))
def test_a_change_asked_by_the_key_of_an_inactive_account_is_refused_and_changes_nothing(
    api: Any, change: str, status: str
) -> None:
    t = tenant(api, credit="5.00")
    set_status(api, t.account_id, status)
    before = _state(t)
    refused = REFUSED[change](t)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "subscription_inactive"
    assert f"subscription is {status}" in refused.json()["detail"]
    assert _state(t) == before
    set_status(api, t.account_id, "active")
    allowed = REFUSED[change](t)
    assert allowed.status_code in (200, 201), allowed.text


def test_an_inactive_account_can_still_read_quote_revoke_a_key_release_a_number_and_stop_recharges(
    api: Any,
) -> None:
    t = tenant(api, credit="5.00")
    spare = t.post("/v1/keys", {"name": "spare"}).json()["id"]
    set_status(api, t.account_id, "canceled")
    assert t.get("/v1/balance").status_code == 200
    assert t.get("/v1/ledger").status_code == 200
    assert t.get("/v1/numbers").status_code == 200
    quote = t.post("/v1/quotes/sms", {"from": t.number, "to": "+14155550111", "text": "hi"})
    assert quote.status_code == 200, quote.text
    revoked = t.client.delete(f"/v1/keys/{spare}", headers=t.auth)
    assert revoked.status_code == 200, revoked.text
    off = _put(t, "/v1/settings/auto-recharge", {"enabled": False})
    assert off.status_code == 200, off.text
    assert off.json()["auto_recharge"]["enabled"] is False
    released = t.client.delete(f"/v1/numbers/{t.number_id}", headers={**t.auth, **idem()})
    assert released.status_code == 200, released.text
