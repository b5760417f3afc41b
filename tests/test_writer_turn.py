"""Every SQLite writer takes the writer turn (`store.writer`) before `BEGIN IMMEDIATE`, so it
queues in the kernel behind the send path's group-commit writers instead of sleeping in
SQLite's busy handler. An audit (1 Dec) measured the settings writes outside the turn at a
p99 of 0.84-1.15 s under send load, 98% of it in `BEGIN IMMEDIATE`, and sends stalling
1.4-2.8 s while the monthly cycle of 1,500 accounts ran outside it; with the turn, 54-72 ms
and 0.09-0.21 s. These tests hold the turn from another open file (as another process would)
and check that each kind of writer waits for it and then goes through."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import clikit
from conftest import _client
from talktime.config import Settings
from talktime.ops import jobs
from talktime.store import make_engine
from talktime.store.engine import is_sqlite_busy
from talktime.store.writer import writer_turn, writing
from talktime.wallet import Wallet
from talktime.wallet.cycle import run_cycle

import apikit
import live


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
        # one turn: held through the first engine, the last one's reenters it at once (two
        # turns would wait on each other's flock until the busy timeout)
        with writer_turn(wallets[0].engine), writer_turn(wallets[-1].engine):
            pass
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


# ---- waiting for the turn is bounded by the busy timeout ----------------------------------


def _busy_engine(url: str, busy_ms: int) -> sa.Engine:
    return make_engine(url, Settings(database_url=url, sqlite_busy_timeout_ms=busy_ms))


def _lock_comes_free(url: str, seconds: float = 10.0) -> bool:
    """True once another open file (another process, to the turn) can take the file lock."""
    fd = os.open(f"{sa.make_url(url).database}-writer.lock", os.O_RDWR)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        return False
    finally:
        os.close(fd)


def test_a_turn_held_by_another_process_past_the_busy_timeout_fails_as_database_is_locked(
    sqlite_url: str,
) -> None:
    # a holder that hangs (a stopped process) used to queue every writer behind it for ever
    engine = _busy_engine(sqlite_url, 300)
    try:
        with turn_held_elsewhere(sqlite_url):
            with pytest.raises(sa.exc.OperationalError) as refused, writing(engine) as conn:
                conn.execute(sa.text("SELECT 1"))
            assert is_sqlite_busy(refused.value)  # what SQLite's own lock gives: a 503
            assert "database is locked" in str(refused.value.orig)
        # the abandoned wait gives the lock back at once when it gets it
        assert _lock_comes_free(sqlite_url)
        with writing(engine) as conn:  # and the next writer gets the turn
            conn.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()


def test_a_waiter_that_gave_up_hands_its_wait_to_the_next_writer(sqlite_url: str) -> None:
    engine = _busy_engine(sqlite_url, 200)
    try:
        with turn_held_elsewhere(sqlite_url):
            for _ in range(3):  # each gives up; the waiter thread stays one
                with pytest.raises(sa.exc.OperationalError), writer_turn(engine):
                    pass
            lock = os.path.realpath(f"{sa.make_url(sqlite_url).database}-writer.lock")
            waiters = [t for t in threading.enumerate() if t.name.endswith(lock)]
            assert len(waiters) == 1
        got: list[str] = []

        def writer() -> None:
            with writer_turn(_busy_engine(sqlite_url, 30000)):
                got.append("turn")

        with turn_held_elsewhere(sqlite_url):
            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            thread.join(0.3)
            assert not got  # still waiting, on the same waiter
        thread.join(30)
        assert got == ["turn"]
        assert _lock_comes_free(sqlite_url)  # given up after the block
    finally:
        engine.dispose()


def test_a_turn_held_by_another_thread_past_the_busy_timeout_fails_as_database_is_locked(
    sqlite_url: str,
) -> None:
    engine = _busy_engine(sqlite_url, 200)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with writer_turn(engine):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(sa.exc.OperationalError) as refused, writer_turn(engine):
            pass
        assert is_sqlite_busy(refused.value)
    finally:
        release.set()
        thread.join(10)
    with writing(engine) as conn:
        conn.execute(sa.text("SELECT 1"))
    engine.dispose()


def test_a_send_and_a_settings_write_answer_503_when_the_turn_does_not_come_then_succeed(
    sqlite_url: str, tmp_path: Path
) -> None:
    for api in _client(sqlite_url, tmp_path, sqlite_busy_timeout_ms=300):
        t = apikit.tenant(api, credit="5.00")
        before = t.balance()["available"]
        with turn_held_elsewhere(sqlite_url):
            sent = t.sms("+14155550111", key="turn-send")
            limit = api.put(
                "/v1/settings/monthly-limit", json={"monthly_limit": "50.00"}, headers=t.auth
            )
        for response in (sent, limit):
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "database_unavailable"
        assert t.balance()["available"] == before  # nothing was charged
        again = t.sms("+14155550111", key="turn-send")  # the same key, once the turn is back
        assert again.status_code == 201, again.text
        assert t.balance()["available"] != before


def test_a_forked_child_takes_its_own_turn_not_its_parents(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with writer_turn(engine):  # the parent holds the turn while it forks
            pid = os.fork()
            if pid == 0:  # the child: the parent's turn is not its own
                code = 1
                try:
                    with writer_turn(_busy_engine(sqlite_url, 200)):
                        code = 2  # it got a turn its parent holds
                except sa.exc.OperationalError as exc:
                    code = 0 if is_sqlite_busy(exc) else 3
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        engine.dispose()


def _locked_elsewhere(url: str) -> bool:
    """True while some open file of the lock (another process's turn) holds it."""
    fd = os.open(f"{sa.make_url(url).database}-writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing our only descriptor gives back a lock it took
    return False


def test_a_child_forked_inside_a_turn_leaves_its_parents_lock_held(sqlite_url: str) -> None:
    # the child ran the parent's leave and unlocked the open file they share
    engine = make_engine(sqlite_url)
    pid = -1
    try:
        with writer_turn(engine):
            pid = os.fork()
            if pid > 0:
                os.waitpid(pid, 0)  # the child has left the block, and exited
                assert _locked_elsewhere(sqlite_url)
    finally:
        if pid == 0:
            os._exit(0)
        engine.dispose()


def test_a_forked_child_keeps_no_copy_of_the_lock_descriptors(sqlite_url: str) -> None:
    # a copy kept the lock of a parent killed in its turn for as long as the child lived
    engine = make_engine(sqlite_url)
    lock = os.path.realpath(f"{sa.make_url(sqlite_url).database}-writer.lock")
    try:
        # refused once, so that the waiter's descriptor is open too
        with (
            turn_held_elsewhere(sqlite_url),
            pytest.raises(sa.exc.OperationalError),
            writer_turn(_busy_engine(sqlite_url, 100)),
        ):
            pass
        with writer_turn(engine):
            pid = os.fork()
            if pid == 0:
                copies = 1
                try:
                    fds = os.listdir("/proc/self/fd")
                    copies = sum(os.path.realpath(f"/proc/self/fd/{fd}") == lock for fd in fds)
                finally:
                    os._exit(copies)
            _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        engine.dispose()


class _InterruptedError(Exception):
    pass


def test_a_wait_interrupted_by_a_signal_leaves_the_lock_to_the_other_processes(
    sqlite_url: str,
) -> None:
    # interrupted, the waiter kept the lock it got later, with nobody in the turn
    engine = make_engine(sqlite_url)

    def interrupt(_signum: int, _frame: Any) -> None:
        raise _InterruptedError

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with turn_held_elsewhere(sqlite_url):
            timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
            timer.start()
            with pytest.raises(_InterruptedError), writer_turn(engine):
                pass
            timer.join()
        # the other process gave it up: the lock comes free and stays free
        assert _lock_comes_free(sqlite_url)
        time.sleep(0.2)
        assert not _locked_elsewhere(sqlite_url)
        with writer_turn(engine):  # and the turn is still usable here
            assert _locked_elsewhere(sqlite_url)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        engine.dispose()


def test_a_file_system_without_locks_lets_writes_go_on_without_the_file_lock_and_says_so(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # an error of flock itself (ENOLCK on a network file system) reached the caller as a 500
    from talktime.store import writer

    def no_locks(_fd: int, _op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    engine = make_engine(sqlite_url)
    monkeypatch.setattr(writer.fcntl, "flock", no_locks)
    try:
        with writing(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
        with writing(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        monkeypatch.undo()
        engine.dispose()
    warned = [r for r in caplog.records if "cannot use the SQLite writer lock" in r.message]
    assert len(warned) == 1  # once per file


def test_sends_queued_behind_a_refused_turn_are_refused_with_it_not_one_timeout_each(
    sqlite_url: str,
) -> None:
    # the group-commit writer failed only the batch's first send per busy timeout: the k-th
    # queued send waited about k timeouts (a full queue: minutes)
    with (
        live.serve(
            sqlite_url, TALKTIME_SQLITE_BUSY_TIMEOUT_MS="300", TALKTIME_ADMIN_KEY=apikit.ADMIN_KEY
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        t = apikit.tenant(client, credit="5.00")
        before = t.balance()["available"]
        statuses: list[int] = []
        start = threading.Barrier(12)

        def send() -> None:
            with httpx.Client(base_url=server.base_url, timeout=60) as own:
                mine = apikit.Tenant(own, t.account_id, t.key, t.user, t.number)
                start.wait()
                statuses.append(mine.sms("+14155550111").status_code)

        senders = [threading.Thread(target=send) for _ in range(12)]
        with turn_held_elsewhere(sqlite_url):  # 2 s: a hung holder, for 6 busy timeouts
            for sender in senders:
                sender.start()
            time.sleep(2.0)
        for sender in senders:
            sender.join(60)
        # each was refused within about two timeouts of arriving, while the turn was held
        assert statuses == [503] * 12
        assert t.balance()["available"] == before


def test_a_command_refused_the_turn_says_the_database_is_locked_by_another_writer(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it said the database "did not answer" and to check the URL
    wallet = Wallet.open(sqlite_url)
    try:
        wallet.upsert_plan("turn", 0)
        account = wallet.create_account("turn", "turn", "turn-cli").account.id
    finally:
        wallet.close()
    with turn_held_elsewhere(sqlite_url):
        ran = clikit.talktime_main(
            monkeypatch,
            "keys",
            "create",
            str(account),
            TALKTIME_DATABASE_URL=sqlite_url,
            TALKTIME_SQLITE_BUSY_TIMEOUT_MS="200",
        )
    assert ran.returncode == 1
    assert "error[database_unavailable]" in ran.stderr
    assert "locked by another writer" in ran.stderr
    assert "sqlite_busy_timeout_ms (200 ms)" in ran.stderr
    assert "Traceback" not in ran.stderr
