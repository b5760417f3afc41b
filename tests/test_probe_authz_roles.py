"""Every role, with and without restrictions, against every route that checks a permission: the
request passes exactly when the role grants the permission and no restriction took it away, and
a refusal is 403 `permission_denied` naming the permission, with nothing changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime import policy
from talktime.api import create_app
from talktime.config import Settings

from apikit import ADMIN_KEY, Tenant, idem, tenant

ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("sms.send", "POST", "/v1/messages", {"to": "+14155550111", "text": "hi"}),
    ("calls.make", "POST", "/v1/calls", {"direction": "outbound", "to": "+14155550111"}),
    ("calls.make", "POST", "/v1/calls", {"direction": "inbound", "from": "+14155550111"}),
    ("billing.manage", "POST", "/v1/credits", {"amount": "5"}),
    (
        "billing.manage",
        "PUT",
        "/v1/settings/auto-recharge",
        {"enabled": True, "threshold": "1", "amount": "5"},
    ),
    ("billing.manage", "PUT", "/v1/settings/monthly-limit", {"monthly_limit": "50"}),
    ("billing.manage", "PUT", "/v1/settings/low-balance", {"low_balance_threshold": "5"}),
]


def _rows(engine: sa.Engine, reflected: sa.MetaData) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {
            name: sorted(repr(tuple(r)) for r in conn.execute(sa.select(table)))
            for name, table in reflected.tables.items()
        }


def _body(t: Tenant, route: dict[str, Any], user: str) -> dict[str, Any]:
    body = {**route, "user": user}
    if body.get("direction") == "inbound":
        body["to"] = t.number
    elif "to" in body:
        body["from"] = t.number
    return body


@pytest.mark.parametrize(
    "restrictions", [[], ["sms.send"], ["calls.make"], ["billing.manage"], ["admin"]]
)
def test_each_role_passes_exactly_the_permissions_it_holds(
    db_url: str, tmp_path: Path, restrictions: list[str]
) -> None:
    settings = Settings(
        database_url=db_url,
        admin_key=ADMIN_KEY,
        rate_cards_dir=str(tmp_path / "cards"),
        payment_provider="test",
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as api:
        t = tenant(api, credit="50")
        tables = sa.MetaData()
        tables.reflect(app.state.engine)
        for role in policy.ROLES:
            made = api.post(
                "/v1/users",
                json={"name": role, "role": role, "restrictions": restrictions},
                headers=t.auth,
            )
            assert made.status_code == 201, made.text
            user = made.json()
            allowed = policy.ROLE_PERMISSIONS[role] - set(restrictions)
            assert set(user["permissions"]) == allowed
            for permission, method, path, route in ROUTES:
                before = _rows(app.state.engine, tables)
                answer = api.request(
                    method,
                    path,
                    json=_body(t, route, user["id"]),
                    headers={**t.auth, **idem()},
                )
                if permission in allowed:
                    assert answer.status_code in (200, 201), (role, path, answer.text)
                    continue
                assert answer.status_code == 403, (role, path, answer.text)
                problem = answer.json()
                assert problem["code"] == "permission_denied"
                assert problem["permission"] == permission
                assert problem["user"] == user["id"]
                why = "an admin restricted it" if permission in restrictions else f"role '{role}'"
                assert why in problem["detail"]
                assert _rows(app.state.engine, tables) == before, (role, path)
