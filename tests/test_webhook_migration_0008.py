"""Migration 0008 (the delivery state `skipped`) on SQLite and PostgreSQL: deliveries and their
attempt log survive the downgrade and the upgrade whole, the downgrade turns skipped deliveries
into failed ones (0007 refuses the state), and after the upgrade the state is accepted again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from talktime.ops import webhooks
from talktime.store import current_revision, head_revision, make_engine, migrate
from talktime.store.ops_tables import webhook_attempts, webhook_deliveries

from ops_helpers import make_account, run_due, settings_for
from receiver import receiver


@pytest.fixture
def head_engine(unmigrated_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(unmigrated_url)
    migrate.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _rows(engine: sa.Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every delivery and every attempt, by id, columns by name."""
    with engine.connect() as conn:
        deliveries = conn.execute(sa.select(webhook_deliveries).order_by("id")).all()
        attempts = conn.execute(sa.select(webhook_attempts).order_by("id")).all()
    return [dict(r._mapping) for r in deliveries], [dict(r._mapping) for r in attempts]


def _downgrade(engine: sa.Engine, revision: str) -> None:
    cfg = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_0008_keeps_deliveries_and_attempts_and_its_downgrade_makes_skipped_failed(
    head_engine: sa.Engine,
) -> None:
    engine = head_engine
    settings = settings_for(engine)
    account = make_account(engine)
    with receiver([200]) as hook:
        sent = webhooks.create_endpoint(engine, settings, account, hook.url)
        off = webhooks.create_endpoint(engine, settings, account, hook.url)
        webhooks.update_endpoint(engine, settings, account, off.id, enabled=False)
        with engine.begin() as conn:
            webhooks.record_event(conn, account, "balance.low", {}, now=1_000)
        assert run_due(engine, settings, 1_000) == ["delivered"]
    deliveries, attempts = _rows(engine)
    states = {d["endpoint_id"]: d["state"] for d in deliveries}
    assert states == {sent.id: "delivered", off.id: "skipped"}
    assert len(attempts) == 1

    _downgrade(engine, "0007")
    assert current_revision(engine) == "0007"
    after_down, attempts_down = _rows(engine)
    assert attempts_down == attempts
    assert after_down == [
        {**d, "state": "failed" if d["state"] == "skipped" else d["state"]} for d in deliveries
    ]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(webhook_deliveries.update().values(state="skipped"))

    migrate.upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _rows(engine) == (after_down, attempts)
    with engine.begin() as conn:
        conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.endpoint_id == off.id)
            .values(state="skipped")
        )
    assert [d["state"] for d in webhooks.list_deliveries(engine, account, off.id)] == ["skipped"]
