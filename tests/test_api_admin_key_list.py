"""`GET /v1/admin/keys?account_id=` of an unknown account is a 404, as every admin route that
names an account answers (it was 200 with an empty list, like an account without keys); an
`admin_key` setting short enough to guess is warned of at start-up."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import SecretStr

from talktime.api.app import warn_of_a_short_admin_key
from talktime.config import Settings

import apikit
from apikit import ADMIN


def test_listing_the_keys_of_an_unknown_account_is_404_as_listing_its_users_is(api: Any) -> None:
    keys = api.get("/v1/admin/keys", params={"account_id": 999}, headers=ADMIN)
    users = api.get("/v1/admin/accounts/999/users", headers=ADMIN)
    assert keys.status_code == users.status_code == 404
    assert keys.json()["code"] == users.json()["code"] == "not_found"
    assert keys.json()["detail"] == users.json()["detail"] == "No account 999."


def test_an_account_without_keys_lists_none_and_a_known_one_lists_its_own(api: Any) -> None:
    created = api.post(
        "/v1/admin/accounts",
        json={"name": "bare", "plan": "startup"},
        headers={**ADMIN, **apikit.idem()},
    )
    assert created.status_code == 201, created.text
    bare = api.get("/v1/admin/keys", params={"account_id": created.json()["id"]}, headers=ADMIN)
    assert bare.status_code == 200
    assert bare.json() == {"keys": [], "next_cursor": None}
    t = apikit.tenant(api, number=None)
    listed = api.get("/v1/admin/keys", params={"account_id": t.account_id}, headers=ADMIN).json()
    assert [k["account_id"] for k in listed["keys"]] == [t.account_id]


@pytest.mark.parametrize(
    ("length", "warned"), [(None, False), (0, False), (11, True), (31, True), (32, False)]
)
def test_an_admin_key_setting_short_enough_to_guess_is_warned_of_at_start(
    caplog: pytest.LogCaptureFixture, length: int | None, warned: bool
) -> None:
    # TALKTIME_ADMIN_KEY=x gave full admin rights without a word; an empty one is no admin key
    settings = Settings(
        database_url="sqlite://", admin_key=None if length is None else SecretStr("k" * length)
    )
    with caplog.at_level(logging.WARNING, logger="talktime.api"):
        warn_of_a_short_admin_key(settings)
    said = [r.getMessage() for r in caplog.records if "admin_key" in r.getMessage()]
    assert bool(said) == warned
    if warned:
        assert f"is {length} characters" in said[0]
        assert "k" * length not in said[0]  # never the key itself
