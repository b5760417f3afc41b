"""Every SQLite writer takes the writer turn (`store.writer`) before `BEGIN IMMEDIATE`, so it
queues in the kernel behind the send path's group-commit writers instead of sleeping in
SQLite's busy handler. An audit (1 Dec) measured the settings writes outside the turn at a
p99 of 0.84-1.15 s under send load, 98% of it in `BEGIN IMMEDIATE`, and sends stalling
1.4-2.8 s while the monthly cycle of 1,500 accounts ran outside it; with the turn, 54-72 ms
and 0.09-0.21 s. These tests hold the turn from another open file (as another process would)
and check that each kind of writer waits for it and then goes through."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import _client
from talktime.ops import jobs
from talktime.store import make_engine
from talktime.store.writer import writer_turn, writing
from talktime.wallet import Wallet
from talktime.wallet.cycle import run_cycle

import apikit


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    import shutil

    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "talktime.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@contextmanager
def turn_held_elsewhere(url: str) -> Iterator[None]:
    """Hold the writer turn's file lock on an open file of our own: to this process's writers
    it is another process's turn."""
    fd = os.open(f"{sa.make_url(url).database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def waits_for_the_turn(url: str, write: Callable[[], Any]) -> Any:
    """Run ``write`` while the turn is held elsewhere: it must not finish until the turn is
    given up, and then finish. Returns what it returned."""
    done: list[Any] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(write())
        except BaseException as exc:  # reported below, in the test's thread
            failed.append(exc)

    with turn_held_elsewhere(url):
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "it wrote without the turn"
        assert not done
        assert not failed
    worker.join(60)
    assert not worker.is_alive()
    if failed:
        raise failed[0]
    return done[0]


def test_the_turn_is_reentrant_in_a_thread_and_given_up_by_the_outermost(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with writer_turn(engine), writer_turn(engine), writing(engine) as conn:
            conn.execute(sa.text("SELECT 1"))  # a write inside a turn held twice: no deadlock
        # given up entirely: another file can take the lock at once
        fd = os.open(f"{engine.url.database}-writer.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_api(sqlite_url: str, tmp_path: Path) -> Iterator[Any]:
    """The app in process on the SQLite file."""
    yield from _client(sqlite_url, tmp_path)


def test_settings_and_admin_writes_over_the_api_wait_for_the_turn(
    sqlite_url: str, sqlite_api: Any
) -> None:
    api = sqlite_api
    t = apikit.tenant(api, number=None)
    limit = waits_for_the_turn(
        sqlite_url,
        lambda: api.put(
            "/v1/settings/monthly-limit", json={"monthly_limit": "50.00"}, headers=t.auth
        ),
    )
    assert limit.status_code == 200, limit.text
    off = {"enabled": False}
    recharge = waits_for_the_turn(
        sqlite_url,
        lambda: api.put("/v1/settings/auto-recharge", json=off, headers=t.auth),
    )
    assert recharge.status_code == 200, recharge.text
    patched = waits_for_the_turn(
        sqlite_url,
        lambda: api.patch(
            f"/v1/admin/accounts/{t.account_id}",
            json={"plan": "business"},
            headers={**apikit.ADMIN, **apikit.idem()},
        ),
    )
    assert patched.status_code == 200, patched.text


def test_the_cycle_the_jobs_and_the_embedded_wallet_wait_for_the_turn(sqlite_url: str) -> None:
    wallet = Wallet.open(sqlite_url)
    try:
        october = datetime(2026, 10, 15, tzinfo=UTC)
        wallet.upsert_plan("turn", 2_000_000, now=october)
        account = wallet.create_account("turn", "turn", "turn-account", now=october).account.id
        runs = waits_for_the_turn(
            sqlite_url, lambda: run_cycle(wallet.engine, datetime(2026, 11, 2, tzinfo=UTC))
        )
        assert [r.account_id for r in runs] == [account]
        claimed = waits_for_the_turn(sqlite_url, lambda: jobs.claim(wallet.engine, "w1"))
        assert claimed == []
        granted = waits_for_the_turn(
            sqlite_url,
            lambda: wallet.grant(account, "promotional", 1_000_000, "turn-grant"),
        )
        assert granted.grant.original == 1_000_000
    finally:
        wallet.close()


def test_two_engines_on_one_file_share_one_turn_and_one_descriptor(sqlite_url: str) -> None:
    # the turn was per engine: a write through a second engine inside a write of the first
    # waited on its own flock for ever, and every engine kept a descriptor open (a loop of
    # Wallet.open/close ran out of them)
    before = len(os.listdir("/proc/self/fd"))
    wallets = [Wallet.open(sqlite_url) for _ in range(20)]
    try:
        wallets[0].upsert_plan("turn", 0)
        for w in wallets:
            w.upsert_plan("turn", 0)  # each engine writes once, taking the file's turn
        assert writer_turn(wallets[0].engine) is writer_turn(wallets[-1].engine)
    finally:
        for w in wallets:
            w.close()
    assert len(os.listdir("/proc/self/fd")) <= before + 1  # the file's one lock descriptor
    first, second = Wallet.open(sqlite_url), Wallet.open(sqlite_url)
    outcome: list[str] = []

    def nested() -> None:
        try:
            with first.book():  # the first engine's write transaction, in the turn
                second.upsert_plan("nested", 0)  # the second engine: same turn, reentered
            outcome.append("committed")
        except sa.exc.OperationalError as exc:
            outcome.append(str(exc.orig))  # SQLite's own lock, after its busy timeout

    try:
        thread = threading.Thread(target=nested, daemon=True)
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "a write through a second engine waited on itself"
        assert outcome == ["database is locked"]
    finally:
        first.close()
        second.close()


def test_the_lock_file_may_be_opened_by_another_user(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with writing(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()
    mode = os.stat(f"{sa.make_url(sqlite_url).database}-writer.lock").st_mode & 0o777
    assert mode & 0o044 == 0o044 & ~_umask()  # readable by others unless the umask says no


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
