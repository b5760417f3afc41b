"""Deleting a webhook endpoint while the worker is busy with it: a dispatch adding deliveries or
an attempt being recorded at the same moment neither breaks the deletion (a 500 on PostgreSQL,
where the foreign keys caught the half-deleted rows) nor the dispatch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from talktime.ops import jobs, webhooks
from talktime.store.ops_tables import webhook_attempts, webhook_deliveries, webhook_endpoints

from ops_helpers import hooked_event, make_account, settings_for


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _rows(engine: sa.Engine, endpoint_id: str) -> tuple[int, int, int]:
    with engine.connect() as conn:
        ids = sa.select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.endpoint_id == endpoint_id
        )
        return (
            conn.execute(
                sa.select(sa.func.count()).where(webhook_endpoints.c.id == endpoint_id)
            ).scalar_one(),
            conn.execute(
                sa.select(sa.func.count()).where(webhook_deliveries.c.endpoint_id == endpoint_id)
            ).scalar_one(),
            conn.execute(
                sa.select(sa.func.count()).where(webhook_attempts.c.delivery_id.in_(ids))
            ).scalar_one(),
        )


def test_deleting_an_endpoint_while_a_dispatch_adds_its_deliveries_deletes_them_too(
    engine: sa.Engine,
) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    endpoint = webhooks.create_endpoint(engine, settings, account, "http://127.0.0.1:9/hooks")
    with engine.connect() as dispatch:
        transaction = dispatch.begin()
        webhooks.record_event(dispatch, account, "balance.low", {})  # not committed yet
        thread, errors = _in_thread(lambda: webhooks.delete_endpoint(engine, account, endpoint.id))
        time.sleep(0.5)  # the deletion waits for the dispatch
        transaction.commit()
    thread.join(60)
    assert errors == []
    assert _rows(engine, endpoint.id) == (0, 0, 0)


def test_a_dispatch_while_an_endpoint_is_being_deleted_skips_it_and_commits(
    engine: sa.Engine,
) -> None:
    account = make_account(engine)
    settings = settings_for(engine)
    doomed = webhooks.create_endpoint(engine, settings, account, "http://127.0.0.1:9/a")
    kept = webhooks.create_endpoint(engine, settings, account, "http://127.0.0.1:9/b")
    with engine.connect() as deleting:
        transaction = deleting.begin()
        deleting.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == doomed.id))

        def dispatch() -> None:
            with engine.begin() as conn:
                webhooks.record_event(conn, account, "balance.low", {}, event_id="evt_race")

        thread, errors = _in_thread(dispatch)
        time.sleep(0.5)  # the dispatch waits for the deletion
        transaction.commit()
    thread.join(60)
    assert errors == []
    assert _rows(engine, doomed.id) == (0, 0, 0)
    [delivery] = webhooks.list_deliveries(engine, account, kept.id)
    assert delivery["event_id"] == "evt_race"


def test_deleting_an_endpoint_while_an_attempt_is_recorded_removes_the_attempt_too(
    engine: sa.Engine,
) -> None:
    with hooked_event(engine, [500]) as (account, settings, t0, hook, endpoint):
        [job] = jobs.claim(engine, "test", now=t0, kinds=(webhooks.DELIVER,))
        with engine.connect() as other:  # e.g. another delivery's attempt updating the endpoint
            transaction = other.begin()
            other.execute(
                webhook_endpoints.update()
                .where(webhook_endpoints.c.id == endpoint.id)
                .values(failure_count=webhook_endpoints.c.failure_count)
            )
            delivering, deliver_errors = _in_thread(
                lambda: webhooks.deliver(engine, settings, int(job.payload["delivery_id"]), now=t0)
            )
            assert hook.arrived.wait(10)
            time.sleep(0.5)  # the attempt is being recorded, behind the other transaction
            deleting, delete_errors = _in_thread(
                lambda: webhooks.delete_endpoint(engine, account, endpoint.id)
            )
            time.sleep(0.5)
            transaction.commit()
        delivering.join(60)
        deleting.join(60)
    assert delete_errors == []
    assert deliver_errors == []
    assert _rows(engine, endpoint.id) == (0, 0, 0)
