"""An endpoint asks for event types talktime sends: a misspelt type is refused, not kept silent."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.keys import create_key
from talktime.ops import webhooks
from talktime.wallet import outbox

from ops_helpers import make_account


def _client(db_url: str) -> tuple[TestClient, sa.Engine, dict[str, str]]:
    app = create_app(Settings(database_url=db_url, webhooks_allow_private=True))
    engine: sa.Engine = app.state.engine
    account = make_account(engine)
    with engine.begin() as conn:
        token = create_key(conn, account).token
    return TestClient(app), engine, {"Authorization": f"Bearer {token}"}


def test_an_unknown_event_type_is_a_422_naming_it_and_the_known_types(db_url: str) -> None:
    client, _, auth = _client(db_url)
    url = "http://127.0.0.1:9/hooks"
    with client:
        refused = client.post(
            "/v1/webhooks/endpoints",
            json={"url": url, "event_types": ["balance.low", "balance.lowx"]},
            headers=auth,
        )
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["code"] == "invalid_event_types"
        assert "'balance.lowx'" in problem["detail"]
        assert "credit.depleted" in problem["detail"]
        assert problem["unknown"] == ["balance.lowx"]
        assert client.get("/v1/webhooks/endpoints", headers=auth).json() == []


def test_changing_an_endpoint_to_an_unknown_event_type_is_refused_and_changes_nothing(
    db_url: str,
) -> None:
    client, _, auth = _client(db_url)
    with client:
        created = client.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/hooks", "event_types": ["balance.low"]},
            headers=auth,
        ).json()
        path = f"/v1/webhooks/endpoints/{created['id']}"
        refused = client.patch(path, json={"event_types": ["charge.uncolected"]}, headers=auth)
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_event_types"
        assert client.get(path, headers=auth).json()["event_types"] == ["balance.low"]


def test_every_event_type_talktime_sends_can_be_asked_for(db_url: str) -> None:
    client, _, auth = _client(db_url)
    wanted = [*outbox.EVENT_TYPES, webhooks.ENDPOINT_DISABLED, "*"]
    with client:
        created = client.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/hooks", "event_types": wanted},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        assert created.json()["event_types"] == sorted(wanted)


def test_the_wallets_event_list_names_every_type_its_modules_write() -> None:
    from talktime.wallet import recharge, rentals

    written = {
        outbox.BALANCE_LOW,
        outbox.CREDIT_DEPLETED,
        outbox.MONTHLY_LIMIT_REACHED,
        outbox.CHARGE_UNCOLLECTED,
        outbox.FREE_CREDIT_EXPIRED,
        outbox.FREE_CREDIT_GRANTED,
        rentals.NUMBER_SUSPENDED,
        recharge.RECHARGE_SUCCEEDED,
        recharge.RECHARGE_FAILED,
    }
    assert written == set(outbox.EVENT_TYPES)
