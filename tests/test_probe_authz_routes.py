"""Every operation of the OpenAPI schema, driven from the schema itself: another account's key
with the owner's ids (in the path or the body) is refused exactly like an unknown id and changes
nothing; a tenant key on an admin route is 403; the admin key on a tenant route is 403; a
revoked or missing key is 401. A route added later fails `test_every_operation_is_classified`
until it is listed here, so it cannot slip past these checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.ops import webhooks

from apikit import ADMIN, ADMIN_KEY, Tenant, idem, tenant

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("POST", "/v1/sms/segments"),
    ("POST", "/v1/quotes/sms"),
    ("POST", "/v1/quotes/calls"),
}
"""No key: they read no account data."""

OWN_CREATE = {
    ("POST", "/v1/users"),
    ("POST", "/v1/keys"),
    ("POST", "/v1/webhooks/endpoints"),
}
"""They take no id at all: whatever they create is the caller's own."""

OWN_READ = {
    ("GET", "/v1/balance"),
    ("GET", "/v1/ledger"),
    ("GET", "/v1/numbers"),
    ("GET", "/v1/users"),
    ("GET", "/v1/keys"),
    ("GET", "/v1/webhooks/endpoints"),
    ("GET", "/v1/usage"),
    ("GET", "/v1/statements/{period}"),
}
"""The caller's own data, never a trace of another account's."""

PATH_IDS: dict[tuple[str, str], Any] = {
    ("GET", "/v1/calls/{call_id}"): None,
    ("POST", "/v1/calls/{call_id}/extend"): {},
    ("POST", "/v1/calls/{call_id}/complete"): {"duration": 60},
    ("DELETE", "/v1/numbers/{number_id}"): None,
    ("GET", "/v1/users/{user_id}"): None,
    ("PATCH", "/v1/users/{user_id}"): {"role": "viewer", "restrictions": ["sms.send"]},
    ("DELETE", "/v1/keys/{key_id}"): None,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}"): None,
    ("PATCH", "/v1/webhooks/endpoints/{endpoint_id}"): {"enabled": False, "url": "http://x.test"},
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}"): None,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"): None,
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}/deliveries"): None,
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/redeliver"): None,
    ("POST", "/v1/webhooks/deliveries/{delivery_id}/redeliver"): None,
}
"""Tenant operations on one resource named in the path (the body, if any, is valid)."""

BODY_IDS = {
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/inbound"),
    ("POST", "/v1/calls"),
    ("POST", "/v1/credits"),
    ("PUT", "/v1/settings/auto-recharge"),
    ("PUT", "/v1/settings/monthly-limit"),
    ("PUT", "/v1/settings/low-balance"),
    ("PUT", "/v1/settings/payment-method"),
    ("POST", "/v1/numbers"),
}
"""Tenant operations that name another account's number or user in the body."""

ADMIN_OPS: dict[tuple[str, str], Any] = {
    ("POST", "/v1/admin/accounts"): {"name": "stolen", "plan": "startup"},
    ("GET", "/v1/admin/accounts"): None,
    ("GET", "/v1/admin/accounts/{account_id}"): None,
    ("PATCH", "/v1/admin/accounts/{account_id}"): {"status": "canceled"},
    ("POST", "/v1/admin/accounts/{account_id}/grants"): {"kind": "purchased", "amount": "100"},
    ("GET", "/v1/admin/accounts/{account_id}/grants"): None,
    ("GET", "/v1/admin/accounts/{account_id}/ledger"): None,
    ("POST", "/v1/admin/accounts/{account_id}/refunds"): {"grant_id": 1, "amount": "1.00"},
    ("POST", "/v1/admin/accounts/{account_id}/users"): {"name": "Mallory", "role": "owner"},
    ("GET", "/v1/admin/accounts/{account_id}/users"): None,
    ("PATCH", "/v1/admin/accounts/{account_id}/users/{user_id}"): {"role": "viewer"},
    ("POST", "/v1/admin/accounts/{account_id}/keys"): {"name": "stolen"},
    ("POST", "/v1/admin/keys"): {"name": "stolen"},
    ("GET", "/v1/admin/keys"): None,
    ("DELETE", "/v1/admin/keys/{key_id}"): None,
    ("GET", "/v1/admin/rate-cards"): None,
    ("POST", "/v1/admin/rate-cards"): {
        "card.toml": "x",
        "sms.csv": "x",
        "voice.csv": "x",
        "numbers.csv": "x",
    },
    ("POST", "/v1/admin/rate-cards/{name}/versions/{version}/activate"): None,
    ("DELETE", "/v1/admin/rate-cards/{name}/activation"): None,
}
"""Admin operations, with bodies that would succeed for an admin."""

TENANT = OWN_CREATE | OWN_READ | set(PATH_IDS) | BODY_IDS


def _operations(client: TestClient) -> set[tuple[str, str]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An owner with one of everything (call, message, number, user, key, webhook endpoint and
    delivery) and an intruder account with its own key, user and number."""
    settings = Settings(
        database_url=db_url,
        admin_key=ADMIN_KEY,
        rate_cards_dir=str(tmp_path / "cards"),
        payment_provider="test",
        webhooks_allow_private=True,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as api:
        owner = tenant(api, credit="10")
        intruder = tenant(api, number="+14155550177", credit="10")
        assert owner.sms("+14155550111").status_code == 201
        out = {"direction": "outbound", "from": owner.number, "to": "+14155550111"}
        call = owner.post("/v1/calls", {**out, "user": owner.user}).json()
        endpoint = api.post(
            "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=owner.auth
        ).json()
        with app.state.engine.begin() as conn:
            webhooks.record_event(conn, owner.account_id, "balance.low", {})
        [delivery] = webhooks.list_deliveries(app.state.engine, owner.account_id, endpoint["id"])
        [key] = api.get("/v1/keys", headers=owner.auth).json()["keys"]
        ids = {
            "call_id": call["id"],
            "number_id": owner.number_id,
            "user_id": owner.user,
            "key_id": key["id"],
            "endpoint_id": endpoint["id"],
            "delivery_id": delivery["id"],
            "account_id": owner.account_id,
            "period": "2026-11",
            "name": "default",
            "version": "2026.11.1",
        }
        nobody = {
            **ids,
            "call_id": "call_nobody",
            "number_id": 999_999,
            "user_id": "usr_nobody",
            "key_id": "key_nobody",
            "endpoint_id": "we_0000000000",
            "delivery_id": 999_999,
        }
        account = api.get(f"/v1/admin/accounts/{owner.account_id}", headers=ADMIN).json()
        # what would betray the owner in an answer to someone else
        marks = [ids["call_id"], ids["user_id"], ids["key_id"], ids["endpoint_id"]]
        marks += [owner.key, key["prefix"], owner.number or "", account["name"]]
        yield {
            "api": api,
            "engine": app.state.engine,
            "owner": owner,
            "intruder": intruder,
            "ids": ids,
            "nobody": nobody,
            "marks": marks,
        }


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (wallet, API, ops): a refused request must change none."""
    reflected = sa.MetaData()
    reflected.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
            for name, table in reflected.tables.items()
            if name not in ("alembic_version",)
        }


def _send(api: TestClient, method: str, url: str, auth: dict[str, str], body: Any) -> Any:
    headers = {**auth, **idem()}
    if body is None:
        return api.request(method, url, headers=headers)
    return api.request(method, url, headers=headers, json=body)


def _masked(response: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The problem document with the request id dropped and each id replaced by its name."""
    body = dict(response.json())
    body.pop("request_id", None)
    text = repr(body)
    for name, value in sorted(values.items(), key=lambda kv: -len(str(kv[1]))):
        if name != "period":
            text = re.sub(rf"(?<![0-9A-Za-z_]){re.escape(str(value))}(?![0-9A-Za-z_])", name, text)
    return {"status": response.status_code, "body": text}


def test_every_operation_is_classified(tmp_path: Path) -> None:
    # the OpenAPI document of `world`'s app, which no database changes: run once, not per backend
    settings = Settings(
        database_url="sqlite://",
        admin_key=ADMIN_KEY,
        rate_cards_dir=str(tmp_path / "cards"),
        payment_provider="test",
        webhooks_allow_private=True,
    )
    app = create_app(settings)
    try:
        classified = PUBLIC | TENANT | set(ADMIN_OPS)
        assert _operations(TestClient(app)) == classified
    finally:
        app.state.engine.dispose()


def test_another_accounts_ids_answer_like_unknown_ones_and_change_nothing(
    world: dict[str, Any],
) -> None:
    api, engine = world["api"], world["engine"]
    intruder: Tenant = world["intruder"]
    before = _snapshot(engine)
    for (method, path), body in PATH_IDS.items():
        theirs = _send(api, method, path.format(**world["ids"]), intruder.auth, body)
        unknown = _send(api, method, path.format(**world["nobody"]), intruder.auth, body)
        assert theirs.status_code == 404, (method, path, theirs.text)
        assert _masked(theirs, world["ids"]) == _masked(unknown, world["nobody"]), (method, path)
    assert _snapshot(engine) == before


def test_another_accounts_number_or_user_in_a_body_is_refused_and_changes_nothing(
    world: dict[str, Any],
) -> None:
    api, engine = world["api"], world["engine"]
    owner: Tenant = world["owner"]
    intruder: Tenant = world["intruder"]
    mine = intruder.number
    attempts = {
        ("POST", "/v1/messages"): [
            {"from": owner.number, "to": "+14155550111", "text": "hi", "user": intruder.user},
            {"from": mine, "to": "+14155550111", "text": "hi", "user": owner.user},
        ],
        ("POST", "/v1/messages/inbound"): [
            {"from": "+14155550111", "to": owner.number, "text": "hi"}
        ],
        ("POST", "/v1/calls"): [
            {"direction": "outbound", "from": mine, "to": "+14155550111", "user": owner.user},
            *(
                {"direction": "inbound", "from": "+14155550111", "to": owner.number, "user": u}
                for u in (owner.user, intruder.user)
            ),
        ],
        ("POST", "/v1/credits"): [{"amount": "5", "user": owner.user}],
        ("PUT", "/v1/settings/auto-recharge"): [
            {"enabled": True, "threshold": "1", "amount": "5", "user": owner.user}
        ],
        ("PUT", "/v1/settings/monthly-limit"): [{"monthly_limit": "1", "user": owner.user}],
        ("PUT", "/v1/settings/low-balance"): [{"low_balance_threshold": "1", "user": owner.user}],
        ("PUT", "/v1/settings/payment-method"): [
            {"customer": "cus_x", "payment_method": "pm_x", "user": owner.user}
        ],
        ("POST", "/v1/numbers"): [{"e164": owner.number}],
    }
    assert set(attempts) == BODY_IDS
    before = _snapshot(engine)
    for (method, path), bodies in attempts.items():
        for body in bodies:
            answer = _send(api, method, path, intruder.auth, body)
            assert answer.status_code in (409, 422), (path, body, answer.text)
            text = answer.text
            for mark in world["marks"]:
                if mark in (owner.user, owner.number) and mark in repr(body):
                    continue  # the id the caller sent may be named back, nothing more
                assert mark not in text, (path, body, text)
    assert _snapshot(engine) == before


def test_the_callers_own_lists_and_reports_show_nothing_of_another_account(
    world: dict[str, Any],
) -> None:
    api, intruder = world["api"], world["intruder"]
    for method, path in sorted(OWN_READ):
        for accept in ("application/json", "text/csv"):
            url = path.format(**world["ids"])
            answer = api.request(method, url, headers={**intruder.auth, "Accept": accept})
            assert answer.status_code == 200, (path, answer.text)
            for mark in world["marks"]:
                assert mark not in answer.text, (path, accept, mark)


def test_a_tenant_key_on_every_admin_route_is_403_and_changes_nothing(
    world: dict[str, Any],
) -> None:
    api, engine = world["api"], world["engine"]
    before = _snapshot(engine)
    for key in (world["owner"], world["intruder"]):
        for (method, path), body in ADMIN_OPS.items():
            answer = _send(api, method, path.format(**world["ids"]), key.auth, body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["code"] == "admin_required"
    assert _snapshot(engine) == before


def test_an_admin_key_on_every_tenant_route_is_403_account_key_required(
    world: dict[str, Any],
) -> None:
    api, engine = world["api"], world["engine"]
    table_admin = api.post("/v1/admin/keys", json={"name": "ops"}, headers=ADMIN).json()["key"]
    before = _snapshot(engine)
    for auth in (ADMIN, {"Authorization": f"Bearer {table_admin}"}):
        for method, path in sorted(TENANT):
            body = PATH_IDS.get((method, path), {}) if method != "GET" else None
            answer = _send(api, method, path.format(**world["ids"]), auth, body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["code"] == "account_key_required"
    assert _snapshot(engine) == before


def test_a_revoked_or_missing_key_is_401_on_every_route_with_a_key(
    world: dict[str, Any],
) -> None:
    api, engine = world["api"], world["engine"]
    owner: Tenant = world["owner"]
    spare = api.post("/v1/keys", json={"name": "spare"}, headers=owner.auth).json()
    admin_spare = api.post("/v1/admin/keys", json={}, headers=ADMIN).json()
    spare_auth = {"Authorization": f"Bearer {spare['key']}"}
    admin_auth = {"Authorization": f"Bearer {admin_spare['key']}"}
    assert api.get("/v1/balance", headers=spare_auth).status_code == 200
    assert api.get("/v1/admin/keys", headers=admin_auth).status_code == 200
    assert api.delete(f"/v1/keys/{spare['id']}", headers=owner.auth).status_code == 200
    assert api.delete(f"/v1/admin/keys/{admin_spare['id']}", headers=ADMIN).status_code == 200
    before = _snapshot(engine)
    for method, path in sorted(TENANT | set(ADMIN_OPS)):
        body = {**PATH_IDS, **ADMIN_OPS}.get((method, path), {}) if method != "GET" else None
        url = path.format(**world["ids"])
        for auth in (spare_auth, admin_auth, {}):
            answer = _send(api, method, url, auth, body)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["code"] == "unauthorized"
    assert _snapshot(engine) == before


def test_key_lists_never_show_a_secret_or_its_hash(world: dict[str, Any]) -> None:
    api, engine = world["api"], world["engine"]
    owner: Tenant = world["owner"]
    with engine.connect() as conn:
        hashes = [r.secret_hash for r in conn.execute(sa.text("SELECT secret_hash FROM api_keys"))]
    secret = owner.key.split("_")[2]
    for answer in (
        api.get("/v1/keys", headers=owner.auth),
        api.get("/v1/admin/keys", headers=ADMIN),
        api.get("/v1/admin/keys", params={"account_id": owner.account_id}, headers=ADMIN),
    ):
        assert answer.status_code == 200
        assert secret not in answer.text
        assert all(h not in answer.text for h in hashes)
        assert all("key" not in k and "secret_hash" not in k for k in answer.json()["keys"])
