"""Helpers for API tests: bootstrap accounts, keys, users and numbers over HTTP.

Works with any client that speaks httpx's interface (a `TestClient` or an `httpx.Client` on a
live server), so the same steps drive in-process and end-to-end tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ADMIN_KEY = "test-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def idem() -> dict[str, str]:
    """A fresh Idempotency-Key header."""
    return {"Idempotency-Key": uuid.uuid4().hex}


@dataclass
class Tenant:
    """One account with its key, a member user and (optionally) a number."""

    client: httpx.Client
    account_id: int
    key: str
    user: str
    number: str | None = None
    number_id: int | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def post(self, path: str, body: Any, key: str | None = None) -> httpx.Response:
        headers = {**self.auth, "Idempotency-Key": key or uuid.uuid4().hex}
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.auth, params=params)

    def sms(
        self, to: str, text: str = "hello", *, key: str | None = None, **extra: Any
    ) -> httpx.Response:
        body = {"from": self.number, "to": to, "text": text, "user": self.user, **extra}
        return self.post("/v1/messages", body, key)

    def authorize(
        self, direction: str = "outbound", other: str = "+14155550111", *, key: str | None = None
    ) -> httpx.Response:
        """`POST /v1/calls` by the member: from the number to `other` (outbound) or back."""
        if direction == "outbound":
            body = {"direction": direction, "from": self.number, "to": other, "user": self.user}
        else:
            body = {"direction": direction, "from": other, "to": self.number, "user": self.user}
        return self.post("/v1/calls", body, key)

    def balance(self) -> dict[str, Any]:
        response = self.get("/v1/balance")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def ledger(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/v1/ledger", limit=500, **params)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries


def tenant(
    client: httpx.Client,
    *,
    plan: str = "startup",
    credit: str = "0",
    number: str | None = "+14155550100",
    rate_card: str | None = None,
) -> Tenant:
    """Create an account (admin API), an API key, a member user and a number."""
    body: dict[str, Any] = {"name": f"acct-{uuid.uuid4().hex[:6]}", "plan": plan}
    if rate_card:
        body["rate_card"] = rate_card
    account_id, key = account_with_key(client, body)
    t = Tenant(client, account_id, key, "")
    response = client.post("/v1/users", json={"name": "Ada"}, headers=t.auth)
    assert response.status_code == 201, response.text
    t.user = response.json()["id"]
    if credit != "0":
        grant(client, account_id, credit)
    if number is not None:
        response = t.post("/v1/numbers", {"e164": number})
        assert response.status_code == 201, response.text
        t.number, t.number_id = number, response.json()["id"]
    return t


def account_with_key(client: httpx.Client, body: dict[str, Any]) -> tuple[int, str]:
    """Create an account from `body` (admin API) and an API key of it: (account id, key)."""
    response = client.post("/v1/admin/accounts", json=body, headers={**ADMIN, **idem()})
    assert response.status_code == 201, response.text
    account_id: int = response.json()["id"]
    response = client.post(f"/v1/admin/accounts/{account_id}/keys", json={}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return account_id, response.json()["key"]


def grant(client: httpx.Client, account_id: int, amount: str, kind: str = "purchased") -> None:
    """Add credit by hand (admin)."""
    response = client.post(
        f"/v1/admin/accounts/{account_id}/grants",
        json={"kind": kind, "amount": amount},
        headers={**ADMIN, **idem()},
    )
    assert response.status_code == 201, response.text


def set_status(client: httpx.Client, account_id: int, status: str) -> None:
    """Change the subscription status (admin)."""
    response = client.patch(
        f"/v1/admin/accounts/{account_id}", json={"status": status}, headers={**ADMIN, **idem()}
    )
    assert response.status_code == 200, response.text


def import_tiny_card(client: httpx.Client) -> None:
    """Import `tiny`: the shipped default card with plans of no free credit (`trial`) and a
    little (`pocket`, $0.05), so tests can run an account down to its last cent."""
    from talktime.rating import shipped_card_dir

    source = shipped_card_dir("default")
    files = {name: (source / name).read_text() for name in ("sms.csv", "voice.csv", "numbers.csv")}
    header = (source / "card.toml").read_text().replace('name = "default"', 'name = "tiny"')
    start = header.index("[plans]")
    end = header.index("\n\n", start)
    header = header[:start] + '[plans]\ntrial = "0"\npocket = "0.05"' + header[end:]
    files["card.toml"] = header
    response = client.post("/v1/admin/rate-cards", json=files, headers=ADMIN)
    assert response.status_code == 201, response.text


@dataclass
class LastMonth:
    """An in-process app and an account the wallet created at the start of last month, so
    its period has ended and the monthly cycle has not run for it."""

    client: Any  # fastapi.testclient.TestClient
    settings: Any  # talktime.config.Settings
    engine: Any  # sqlalchemy.Engine
    wallet: Any  # talktime.wallet.Wallet
    account: int
    now: datetime
    last_month: datetime
    this_month: datetime


@contextmanager
def account_from_last_month(
    db_url: str, cards_dir: Path, plan: str, free_credit: str
) -> Iterator[LastMonth]:
    """`LastMonth` on ``db_url`` (admin key, rate cards under ``cards_dir``): the account is on
    ``plan``, whose free credit in the plans table is ``free_credit``."""
    from fastapi.testclient import TestClient

    from talktime import money
    from talktime.api import create_app
    from talktime.config import Settings
    from talktime.wallet import Wallet

    settings = Settings(database_url=db_url, admin_key=ADMIN_KEY, rate_cards_dir=str(cards_dir))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last_month = (this_month - timedelta(days=1)).replace(day=1)
        wallet = Wallet(engine)
        wallet.upsert_plan(plan, money.parse(free_credit), now=last_month)
        account = wallet.create_account("Acme", plan, "acct", now=last_month).account.id
        yield LastMonth(client, settings, engine, wallet, account, now, last_month, this_month)
