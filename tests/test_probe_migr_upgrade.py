"""Upgrading a database that holds data, from revision 0005 (the schema before the keys-first
idempotency records) to head, on SQLite and PostgreSQL: every row is kept, keys stored before
the upgrade replay their answers and refuse other requests, pending holds and calls settle,
`db upgrade` twice is harmless, a migration that fails half-way leaves 0005 whole (both
backends run each migration in one transaction), and 0006's downgrade keeps the data.

The data is written by today's code at head and the database then downgraded to 0005 (today's
code reads `grants.drained`, which 0005 does not have), so the downgrades of 0007 and 0006 are
exercised too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings
from talktime.store import current_revision, head_revision, make_engine, migrate
from talktime.wallet import Wallet
from talktime.wallet.errors import IdempotencyConflictError

import apikit

OLD = "0005"


@pytest.fixture
def old_engine(unmigrated_url: str) -> Iterator[sa.Engine]:
    """An engine on a database migrated only to revision 0005."""
    engine = make_engine(unmigrated_url)
    migrate.upgrade(engine, OLD)
    try:
        yield engine
    finally:
        engine.dispose()


def _client(engine: sa.Engine, tmp_path: Path) -> TestClient:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url, admin_key=apikit.ADMIN_KEY, rate_cards_dir=str(tmp_path / "cards")
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


ADDED = {("grants", "drained")}
"""Columns added after 0005 (0007): compared on their own (`_drained_matches_remaining`)."""


def _rows(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but the revision), sorted, columns by name (but `ADDED`)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            if table == "alembic_version":
                continue
            columns = sorted(
                c["name"] for c in inspector.get_columns(table) if (table, c["name"]) not in ADDED
            )
            rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}")).all()
            out[table] = sorted((tuple(map(repr, row)) for row in rows), key=repr)
    return out


def _drained_matches_remaining(engine: sa.Engine) -> None:
    """0007 marked exactly the grants with nothing left, and there are some of each."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT remaining, drained FROM grants")).all()
    assert {(remaining == 0, bool(drained)) for remaining, drained in rows} == {
        (True, True),
        (False, False),
    }


def _primary_key(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        columns: list[str] = sa.inspect(conn).get_pk_constraint(table)["constrained_columns"]
    return columns


def _write_at_0005(engine: sa.Engine, tmp_path: Path) -> dict[str, Any]:
    """Money-moving requests with keys over HTTP and through the embedded wallet, at head; then
    the database is downgraded to 0005. What they answered."""
    migrate.upgrade(engine)
    made: dict[str, Any] = {}
    with _client(engine, tmp_path) as client:
        t = apikit.tenant(client, credit="20.00")
        body = {"from": t.number, "to": "+14155550111", "text": "before", "user": t.user}
        key = f"sms-{uuid.uuid4().hex}"
        sent = t.post("/v1/messages", body, key=key)
        assert sent.status_code == 201, sent.text
        call = t.post(
            "/v1/calls",
            {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user},
        )
        assert call.status_code == 201, call.text
        made.update(tenant=t, sms=(key, body, sent.text), call=call.json()["id"])
        made["balance"] = t.balance()
    wallet = Wallet(engine)
    try:
        account = t.account_id
        made["charge"] = wallet.charge(account, 13_000, key="emb-charge").transaction_id
        made["hold"] = wallet.authorize(
            account, 500_000, key="emb-auth", ttl=timedelta(days=1)
        ).hold.id
        # a grant emptied to the last micro-unit, so 0007 has a drained one to mark
        spent = wallet.grant(account, "purchased", 7_000, key="emb-small").grant.id
        wallet.refund(account, spent, 7_000, key="emb-refund")
    finally:
        wallet.close()
    cfg = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, OLD)
    assert current_revision(engine) == OLD
    return made


def test_an_upgrade_from_0005_keeps_every_row_and_answers_keys_stored_before_it(
    old_engine: sa.Engine, tmp_path: Path
) -> None:
    made = _write_at_0005(old_engine, tmp_path)
    before = _rows(old_engine)
    assert _primary_key(old_engine, "idempotency") == ["account_id", "key"]

    migrate.upgrade(old_engine)
    assert current_revision(old_engine) == head_revision()
    assert _rows(old_engine) == before
    _drained_matches_remaining(old_engine)
    assert _primary_key(old_engine, "idempotency") == ["key", "account_id"]
    assert _primary_key(old_engine, "api_requests") == ["key", "account_id"]
    migrate.upgrade(old_engine)  # a second `db upgrade` changes nothing
    assert _rows(old_engine) == before

    wallet = Wallet(old_engine)
    try:
        assert wallet.verify() == []
        t = made["tenant"]
        replayed = wallet.charge(t.account_id, 13_000, key="emb-charge")
        assert replayed.transaction_id == made["charge"]
        with pytest.raises(IdempotencyConflictError):
            wallet.charge(t.account_id, 14_000, key="emb-charge")
        settled = wallet.settle(made["hold"], 200_000, key="emb-settle")
        assert settled.hold.state == "settled"
    finally:
        wallet.close()

    with _client(old_engine, tmp_path) as client:
        t.client = client
        health = client.get("/healthz").json()
        assert health["database"]["up_to_date"] is True
        key, body, text = made["sms"]
        again = t.post("/v1/messages", body, key=key)
        assert (again.status_code, again.text) == (201, text)
        other = t.post("/v1/messages", {**body, "text": "another"}, key=key)
        assert other.status_code == 409, other.text
        assert other.json()["code"] == "idempotency_conflict"
        done = t.post(f"/v1/calls/{made['call']}/complete", {"duration": 61})
        assert done.status_code == 200, done.text
    wallet = Wallet(old_engine)
    try:
        assert wallet.verify() == []
    finally:
        wallet.close()


def _fail_at(engine: sa.Engine, needle: str) -> Any:
    """A listener that raises before the first statement holding ``needle``."""

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if needle in statement:
            raise RuntimeError(f"interrupted before {statement[:60]!r}")

    sa.event.listen(engine, "before_cursor_execute", before)
    return before


def test_a_0006_upgrade_that_fails_half_way_leaves_0005_whole_and_runs_again(
    old_engine: sa.Engine, tmp_path: Path
) -> None:
    made = _write_at_0005(old_engine, tmp_path)
    before = _rows(old_engine)
    # the last step of 0006, after idempotency's key was already rebuilt in its transaction
    needle = (
        "RENAME TO api_requests"
        if old_engine.dialect.name == "sqlite"
        else "ADD CONSTRAINT pk_api_requests"
    )
    listener = _fail_at(old_engine, needle)
    with pytest.raises(RuntimeError, match="interrupted"):
        migrate.upgrade(old_engine)
    sa.event.remove(old_engine, "before_cursor_execute", listener)

    assert current_revision(old_engine) == OLD
    assert _primary_key(old_engine, "idempotency") == ["account_id", "key"]
    assert _primary_key(old_engine, "api_requests") == ["account_id", "key"]
    with old_engine.connect() as conn:
        assert not [t for t in sa.inspect(conn).get_table_names() if t.startswith("_alembic")]
    assert _rows(old_engine) == before

    migrate.upgrade(old_engine)
    assert current_revision(old_engine) == head_revision()
    assert _rows(old_engine) == before
    wallet = Wallet(old_engine)
    try:
        assert wallet.verify() == []
        assert wallet.charge(made["tenant"].account_id, 13_000, key="emb-charge").replayed
    finally:
        wallet.close()


def test_the_0006_downgrade_keeps_the_data_and_upgrades_again(
    old_engine: sa.Engine, tmp_path: Path
) -> None:
    _write_at_0005(old_engine, tmp_path)
    migrate.upgrade(old_engine)
    before = _rows(old_engine)
    cfg = migrate.alembic_config(old_engine.url.render_as_string(hide_password=False))
    with old_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, OLD)
    assert current_revision(old_engine) == OLD
    assert _primary_key(old_engine, "idempotency") == ["account_id", "key"]
    assert _rows(old_engine) == before
    migrate.upgrade(old_engine)
    assert _rows(old_engine) == before
    assert _primary_key(old_engine, "idempotency") == ["key", "account_id"]
