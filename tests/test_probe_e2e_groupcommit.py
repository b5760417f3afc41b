"""Group commit across processes (two apps, or two committers, on one database): duplicates of
a send racing in two processes both get the winner's answer, and two processes' batches lock
their accounts in one order (no deadlock), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from talktime.service.groupcommit import GroupCommitter
from talktime.store import make_engine
from talktime.store.writer import writer_turn

import apikit
from apikit import tenant

probe_metadata = sa.MetaData()
probe = sa.Table(
    "probe_e2e_locks", probe_metadata, sa.Column("name", sa.String(40), primary_key=True)
)


@pytest.fixture
def second_app(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """Another app on the test's database: its own engine and group committer, as a second
    `talktime serve` worker process has."""
    from fastapi.testclient import TestClient

    from talktime.api import create_app
    from talktime.config import Settings

    settings = Settings(
        database_url=db_url, admin_key=apikit.ADMIN_KEY, rate_cards_dir=str(tmp_path / "cards")
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _waiting_for_locks(engine: sa.Engine) -> int:
    with engine.connect() as conn:  # a new transaction: pg_stat_activity is read once in one
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).scalar_one()
        )


def _held_account(engine: sa.Engine, account_id: int) -> sa.Connection:
    """A connection in a transaction holding ``account_id``'s lock (SQLite: the write lock)."""
    conn = engine.connect()
    conn.begin()
    conn.exec_driver_sql(
        "SELECT id FROM accounts WHERE id = %s FOR UPDATE"
        if engine.dialect.name == "postgresql"
        else "UPDATE accounts SET name = name WHERE id = ?",
        (account_id,),
    )
    return conn


def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_send_duplicated_in_two_processes_answers_both_once_charged(
    api: Any, second_app: Any, db_url: str
) -> None:
    t = tenant(api, credit="5.00")
    other = apikit.Tenant(second_app, t.account_id, t.key, t.user, t.number, t.number_id)
    before = t.balance()["available"]
    engine = make_engine(db_url)
    blocker = _held_account(engine, t.account_id)
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        # both look the key up (unused), then wait for the account's lock
        answers = [
            pool.submit(lambda c=c: c.post("/v1/messages", _sms(t), key="dup-1"))
            for c in (t, other)
        ]
        if engine.dialect.name == "postgresql":
            _until(lambda: _waiting_for_locks(engine) >= 2)
        else:
            time.sleep(0.3)
        blocker.commit()
        results: list[httpx.Response] = [a.result(30) for a in answers]
    finally:
        blocker.close()
        pool.shutdown()
        engine.dispose()
    assert [r.status_code for r in results] == [201, 201], [r.text for r in results]
    assert results[0].content == results[1].content
    assert sorted(str(r.headers.get("idempotent-replayed")) for r in results) == ["None", "true"]
    usage = [e for e in t.ledger(kind="usage") if e["reference"] == results[0].json()["id"]]
    assert len(usage) == 1
    assert t.balance()["available"] != before


def _sms(t: apikit.Tenant) -> dict[str, Any]:
    return {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}


@pytest.fixture
def probe_engines(db_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    first, second = make_engine(db_url), make_engine(db_url)
    probe_metadata.create_all(first)
    with first.begin() as conn:
        conn.execute(probe.insert(), [{"name": "a"}, {"name": "b"}])
    try:
        yield first, second
    finally:
        second.dispose()
        probe_metadata.drop_all(first)
        first.dispose()


def test_two_processes_batches_lock_their_accounts_in_one_order(
    probe_engines: tuple[sa.Engine, sa.Engine],
) -> None:
    """Process one queues units for accounts 2 then 1, process two for 1 then 2; each batch's
    first unit waits (up to 1.5 s) for the other's to hold its row: in arrival order that was a
    sure deadlock on PostgreSQL (one unit failed with it), in account order it cannot be."""
    if probe_engines[0].dialect.name != "postgresql":
        pytest.skip("PostgreSQL row locks only: SQLite has one writer at a time")
    first_rows = threading.Barrier(2, timeout=1.5)

    def lock(name: str, wait: bool) -> Callable[[sa.Connection], str]:
        def unit(conn: sa.Connection) -> str:
            conn.execute(probe.update().where(probe.c.name == name).values(name=name))
            if wait:
                # broken when the other batch waits for this one's lock: no cycle
                with contextlib.suppress(threading.BrokenBarrierError):
                    first_rows.wait()
            return name

        return unit

    committers = [GroupCommitter(e, window_ms=0, turn=writer_turn) for e in probe_engines]
    orders = [[("b", 2), ("a", 1)], [("a", 1), ("b", 2)]]
    release = threading.Event()
    entered = [threading.Event(), threading.Event()]
    pool = ThreadPoolExecutor(max_workers=8)
    futures: list[Future[str]] = []
    try:
        for i, (committer, order) in enumerate(zip(committers, orders, strict=True)):

            def gate(conn: sa.Connection, i: int = i) -> None:
                entered[i].set()
                release.wait(10)

            pool.submit(committer.submit, gate)
            assert entered[i].wait(10)
            for j, (name, account) in enumerate(order):
                futures.append(pool.submit(committer.submit, lock(name, j == 0), account))
            _until(lambda c=committer: c.waiting == 2)
        release.set()
        assert sorted(f.result(30) for f in futures) == ["a", "a", "b", "b"]
    finally:
        release.set()
        pool.shutdown()
        for committer in committers:
            committer.close()
