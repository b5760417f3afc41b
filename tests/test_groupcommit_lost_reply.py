"""A batch whose COMMIT reached the database but whose reply was lost (the connection dropped)
runs again on a fresh connection: its first-time sends still answer as first-time sends (no
`Idempotent-Replayed`, counted in `talktime_charges_total`), charged once; genuine replays stay
replays. On SQLite and PostgreSQL: the loss is injected after the driver's real COMMIT."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from talktime.service import messages
from talktime.service.groupcommit import _Pending, _run_batch
from talktime.service.idempotency import GroupedUnit, StoredResponse
from talktime.store.reuse import ConnectionStack

from apikit import Tenant, tenant

US_TO = "+14155550111"


@contextmanager
def commit_replies_lost(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, lose: Callable[[], bool]
) -> Iterator[list[int]]:
    """While open, a COMMIT for which ``lose()`` is true runs in the database, then the
    connection closes before the caller hears back: the driver's error for the closed
    connection, which SQLAlchemy classifies as a disconnect. Yields the count of lost replies."""
    commit = engine.dialect.do_commit
    lost = [0]

    def do_commit(dbapi_connection: Any) -> None:
        commit(dbapi_connection)
        if not lose():
            return
        lost[0] += 1
        raw = dbapi_connection.dbapi_connection
        raw.close()
        raw.commit()  # raises: psycopg's "the connection is closed", sqlite3's "closed database"

    with monkeypatch.context() as patch:
        patch.setattr(engine.dialect, "do_commit", do_commit)
        yield lost


def _once() -> Callable[[], bool]:
    """Lose the reply of the calling thread's next COMMIT (no other thread's)."""
    caller, armed = threading.current_thread(), [True]

    def lose() -> bool:
        if threading.current_thread() is not caller:
            return False
        was, armed[0] = armed[0], False
        return was

    return lose


def _every_batchs_first_commit() -> Callable[[], bool]:
    """The writer thread's first COMMIT of each batch: lost, its rerun's not (and nothing but
    the writer's)."""
    last_lost = [False]

    def lose() -> bool:
        if threading.current_thread().name != "talktime-group-commit":
            return False
        last_lost[0] = not last_lost[0]
        return last_lost[0]

    return lose


def _usage_of(t: Tenant, message_id: str) -> list[dict[str, Any]]:
    return [e for e in t.ledger(kind="usage") if e["reference"] == message_id]


@pytest.mark.parametrize("path", ["together", "alone"])
def test_a_batch_rerun_after_a_lost_commit_reply_answers_its_first_sends_as_first_time(
    api: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    t = tenant(api, credit="5.00")
    assert t.number is not None
    engine, settings = api.app.state.engine, api.app.state.settings
    earlier = t.sms(US_TO, "earlier", key="answered-before")
    assert earlier.status_code == 201, earlier.text

    def unit(key: str, text: str) -> GroupedUnit:
        req = messages.SendSms(t.number or "", US_TO, text, t.user)
        made = messages.send_unit(settings, t.account_id, req, key)
        return made if path == "together" else dataclasses.replace(made, together=None)

    units = [unit(f"new-{i}", f"new {i}") for i in range(3)]
    units += [unit("new-0", "new 0"), unit("answered-before", "earlier")]  # a twin, a replay
    stack = ConnectionStack(engine, keep=1)
    try:
        with commit_replies_lost(engine, monkeypatch, _once()) as lost:
            outcomes, _, ran = _run_batch(stack, [_Pending(u, lambda ok, v: None) for u in units])
    finally:
        stack.close()
    assert lost == [1]
    assert ran is (True if path == "together" else None)
    assert all(ok and isinstance(value, StoredResponse) for ok, value in outcomes)
    answers = [value for ok, value in outcomes]
    assert [a.replayed for a in answers] == [False, False, False, True, True]
    assert answers[3].body == answers[0].body  # the twin answered from the first's record
    assert answers[4].body == earlier.text
    for answer in answers[:3]:
        assert len(_usage_of(t, json.loads(answer.body)["id"])) == 1


def _charges(api: Any) -> float:
    text = api.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "talktime_charges_total" and s.labels["route"] == "/v1/messages"
    )


def test_served_sends_whose_commit_reply_was_lost_are_first_time_charged_once_and_counted(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = tenant(api, credit="5.00")
    earlier = t.sms(US_TO, "earlier", key="answered-before")
    assert earlier.status_code == 201, earlier.text
    counted = _charges(api)
    keys = [uuid.uuid4().hex for _ in range(8)]
    with (
        commit_replies_lost(
            api.app.state.engine, monkeypatch, _every_batchs_first_commit()
        ) as lost,
        ThreadPoolExecutor(max_workers=10) as pool,
    ):
        first = [pool.submit(t.sms, US_TO, f"first {i}", key=k) for i, k in enumerate(keys)]
        again = pool.submit(t.sms, US_TO, "earlier", key="answered-before")
        answers = [f.result(30) for f in first]
        replay = again.result(30)
    assert lost[0] >= 1
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None] * 8
    assert len({a.json()["id"] for a in answers}) == 8
    for answer in answers:
        assert len(_usage_of(t, answer.json()["id"])) == 1
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true")
    assert replay.content == earlier.content
    assert _charges(api) == counted + 8
    for i, (answer, key) in enumerate(zip(answers, keys, strict=True)):  # a resend replays
        resent = t.sms(US_TO, f"first {i}", key=key)
        assert (resent.content, resent.headers.get("Idempotent-Replayed")) == (
            answer.content,
            "true",
        )
