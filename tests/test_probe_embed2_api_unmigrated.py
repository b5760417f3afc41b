"""The API's answer on a database that was never migrated stays the operator's 503
`database_not_migrated` ("an operator must run `talktime db upgrade`") also where a route
reaches the embedded `Wallet` first, which now refuses with its own `DatabaseNotMigratedError`
(whose sentence, meant for embedding code, names `Wallet.open(url, migrate=True)`). Today's
routes query the database before they reach a wallet, so a route of the test's own stands for
one that would not."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.wallet import Wallet

import apikit

OPERATOR_SENTENCE = (
    "The service's database has no talktime tables, or an older schema; an operator must run "
    "`talktime db upgrade`."
)


@pytest.mark.parametrize("path", ["/v1/admin/accounts/1", "/test/wallet-first"])
def test_a_request_on_an_unmigrated_database_is_the_operators_503_even_via_the_wallet(
    unmigrated_url: str, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    app = create_app(Settings(database_url=unmigrated_url, admin_key=apikit.ADMIN_KEY))

    @app.get("/test/wallet-first")
    def wallet_first() -> dict[str, int]:
        with Wallet(app.state.engine) as wallet:
            return wallet.plans()

    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get(path, headers=apikit.ADMIN)
    app.state.engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["title"]) == ("database_not_migrated", "Database not migrated")
    assert body["detail"] == OPERATOR_SENTENCE
    assert body["request_id"] == response.headers["x-request-id"]
    assert any("run `talktime db upgrade`" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged
