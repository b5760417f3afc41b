"""The group committer: units of concurrent requests share one transaction, a savepoint each."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gcprobe import insert, names, probe, probe_table
from talktime.errors import TalktimeError
from talktime.service.groupcommit import GroupCommitter, committer_for
from talktime.service.idempotency import KeepWritesError
from talktime.store.rawsql import RawStatement
from talktime.store.writer import writer_turn

from ops_helpers import make_account


class ProbeRefusedError(TalktimeError):
    code = "probe_refused"
    status = 422
    title = "Probe refused"


@pytest.fixture
def probe_engine(engine: sa.Engine) -> Iterator[sa.Engine]:
    with probe_table(engine):
        yield engine


def refuse_after_insert(name: str) -> Callable[[sa.Connection], str]:
    def unit(conn: sa.Connection) -> str:
        conn.execute(probe.insert().values(name=name))
        raise ProbeRefusedError(f"{name} is refused")

    return unit


def one_batch(
    committer: GroupCommitter,
    units: list[Callable[[sa.Connection], Any]],
    commits: bool = True,
) -> list[Future[Any]]:
    """Submit ``units`` while the writer is held inside a gate unit, so that all of them are
    queued before it collects its next batch: they then share exactly one transaction."""
    entered, release = threading.Event(), threading.Event()

    def gate(conn: sa.Connection) -> str:
        entered.set()
        release.wait(10)
        return "gate"

    pool = ThreadPoolExecutor(max_workers=len(units) + 1)
    gate_done = pool.submit(committer.submit, gate)
    assert entered.wait(10)
    futures = []
    for queued, unit in enumerate(units, 1):
        futures.append(pool.submit(committer.submit, unit))
        # one at a time, so the queue holds them in list order (submitted all at once, the
        # pool's threads raced: on a loaded machine the second `a` of the duplicate-key test
        # came first and the test failed)
        while committer.waiting < queued:
            threading.Event().wait(0.001)
    before = committer.batches
    release.set()
    gate_done.exception(10)
    for future in futures:
        future.exception(10)
    if commits:  # the gate's batch and one more
        assert committer.batches == before + 2
    pool.shutdown()
    return futures


def test_a_refused_unit_rolls_back_only_its_own_savepoint(probe_engine: sa.Engine) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)
    futures = one_batch(
        committer, [insert("a"), refuse_after_insert("b"), insert("c"), insert("d")]
    )
    assert [f.result() for i, f in enumerate(futures) if i != 1] == ["a", "c", "d"]
    refusal = futures[1].exception()
    assert isinstance(refusal, ProbeRefusedError)
    assert names(probe_engine) == {"a", "c", "d"}
    committer.close()


def test_refusals_between_and_after_committed_units_undo_only_themselves(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)
    units = [insert("a"), insert("b"), refuse_after_insert("c"), insert("d")]
    futures = one_batch(committer, [*units, refuse_after_insert("e")])
    assert [futures[i].result() for i in (0, 1, 3)] == ["a", "b", "d"]
    assert all(isinstance(futures[i].exception(), ProbeRefusedError) for i in (2, 4))
    assert names(probe_engine) == {"a", "b", "d"}
    committer.close()


def test_an_unexpected_error_in_a_unit_spares_its_neighbours(probe_engine: sa.Engine) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)
    futures = one_batch(committer, [insert("a"), insert("a"), insert("b")])  # duplicate key
    assert futures[0].result() == "a"
    assert isinstance(futures[1].exception(), sa.exc.IntegrityError)
    assert futures[2].result() == "b"
    assert names(probe_engine) == {"a", "b"}
    committer.close()


_RAW_INSERT = RawStatement(probe.insert(), column_keys=["name"])
_RAW_COUNT = RawStatement(
    sa.select(sa.func.count().label("n")).where(probe.c.name == sa.bindparam("name"))
)


def raw_insert(name: str, *, refuse: bool = False) -> Callable[[sa.Connection], str]:
    """A unit writing through a `RawStatement`: on PostgreSQL the insert is only queued in the
    writer's pipeline and reaches the server with the unit's next read or its end."""

    def unit(conn: sa.Connection) -> str:
        _RAW_INSERT.execute(conn, {"name": name})
        if refuse:
            raise ProbeRefusedError(f"{name} is refused")
        return name

    return unit


def test_reads_after_a_queued_raw_write_see_it_through_sqlalchemy_and_raw(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)

    def unit(conn: sa.Connection) -> tuple[int, int, int]:
        if conn.dialect.name == "postgresql":  # the case this guards: the unit is pipelined
            assert conn.connection.dbapi_connection.pgconn.pipeline_status  # type: ignore[union-attr]
        _RAW_INSERT.execute(conn, {"name": "q"})
        core = conn.execute(sa.select(sa.func.count()).where(probe.c.name == "q")).scalar_one()
        raw = _RAW_COUNT.rows(conn, {"name": "q"})[0].n
        pending = _RAW_COUNT.start(conn, {"name": "q"})
        return core, raw, pending.rows()[0].n

    assert committer.submit(unit) == (1, 1, 1)
    assert names(probe_engine) == {"q"}
    committer.close()


def test_a_queued_raw_write_that_fails_fails_only_its_own_unit(probe_engine: sa.Engine) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)

    def then_read(conn: sa.Connection) -> int:
        raw_insert("a")(conn)  # fails, but on PostgreSQL only when the next read syncs
        return int(conn.execute(sa.select(sa.func.count()).select_from(probe)).scalar_one())

    units = [
        raw_insert("a"),
        raw_insert("a"),
        raw_insert("b", refuse=True),
        then_read,
        raw_insert("c"),
    ]
    futures = one_batch(committer, units)
    assert futures[0].result() == "a"
    assert isinstance(futures[1].exception(), sa.exc.IntegrityError)  # duplicate key
    assert isinstance(futures[2].exception(), ProbeRefusedError)
    assert isinstance(futures[3].exception(), sa.exc.IntegrityError)
    assert futures[4].result() == "c"
    assert names(probe_engine) == {"a", "c"}
    committer.close()


def test_the_writer_keeps_its_connection_and_runs_a_batch_again_after_the_server_dropped_it(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)
    postgresql = probe_engine.dialect.name == "postgresql"

    def session(conn: sa.Connection) -> int:
        if postgresql:
            return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        return id(conn.connection.dbapi_connection)

    first = committer.submit(session)
    assert committer.submit(session) == first  # no pool checkout (nor pre-ping) per batch
    if postgresql:
        with probe_engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            admin.commit()
        # the next batch meets the dropped connection, and runs again on a fresh one
        assert committer.submit(insert("after-drop")) == "after-drop"
        assert committer.submit(session) != first
        assert names(probe_engine) == {"after-drop"}
    committer.close()


def test_a_failed_commit_fails_every_unit_of_the_batch(probe_engine: sa.Engine) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)

    def fail_commit(conn: sa.Connection) -> None:
        if conn.in_transaction() and not conn.in_nested_transaction():
            raise OSError("disk full")

    sa.event.listen(probe_engine, "commit", fail_commit)
    try:
        futures = one_batch(
            committer, [insert("a"), refuse_after_insert("b"), insert("c")], commits=False
        )
    finally:
        sa.event.remove(probe_engine, "commit", fail_commit)
    for future in futures:
        assert isinstance(future.exception(), OSError)
    assert names(probe_engine) == set()
    # the writer carries on with the next batch
    assert committer.submit(insert("d")) == "d"
    assert names(probe_engine) == {"d"}
    committer.close()


def test_a_result_is_given_only_after_its_batch_committed(probe_engine: sa.Engine) -> None:
    committer = GroupCommitter(probe_engine, window_ms=5, turn=writer_turn)
    commits: list[int] = []

    def on_commit(conn: sa.Connection) -> None:
        commits.append(committer.batches)

    sa.event.listen(probe_engine, "commit", on_commit)
    try:

        def send(i: int) -> tuple[str, bool, int]:
            name = committer.submit(insert(f"u{i}"))
            return name, name in names(probe_engine), len(commits)

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(send, range(24)))
    finally:
        sa.event.remove(probe_engine, "commit", on_commit)
    for name, visible_elsewhere, commits_seen in results:
        assert visible_elsewhere, f"{name} was answered before it was committed"
        assert commits_seen >= 1
    committer.close()


def test_concurrent_units_all_land_in_fewer_transactions(probe_engine: sa.Engine) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, max_batch=16, turn=writer_turn)
    units = [insert(f"n{i}") for i in range(40)]
    futures = one_batch(committer, units[:16])
    with ThreadPoolExecutor(max_workers=12) as pool:
        rest = list(pool.map(lambda u: committer.submit(u), units[16:]))
    assert [f.result() for f in futures] + rest == [f"n{i}" for i in range(40)]
    assert names(probe_engine) == {f"n{i}" for i in range(40)}
    committer.close()


def test_a_kept_refusal_commits_its_writes_and_then_refuses(probe_engine: sa.Engine) -> None:
    from talktime.service.idempotency import GroupedUnit, run_grouped

    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)

    def work(conn: sa.Connection) -> tuple[int, Any]:
        conn.execute(probe.insert().values(name="event"))
        raise KeepWritesError(ProbeRefusedError("over the limit"))

    with pytest.raises(ProbeRefusedError):
        run_grouped(committer, GroupedUnit(1, "k", "probe", "digest", work))
    assert names(probe_engine) == {"event"}
    committer.close()


def test_a_closed_committer_finishes_its_queue_and_refuses_new_units(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(probe_engine, window_ms=1, turn=writer_turn)
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda i: committer.submit(insert(f"c{i}")), range(8)))
    committer.close()
    assert names(probe_engine) == set(done)
    with pytest.raises(RuntimeError):
        committer.submit(insert("late"))


def test_group_commit_off_gives_no_committer_and_on_gives_one_per_engine(
    engine: sa.Engine,
) -> None:
    assert committer_for(engine, enabled=False) is None
    first = committer_for(engine, enabled=True)
    assert first is not None
    assert committer_for(engine, enabled=True, window_ms=1.0) is first
    first.close()


def test_a_window_of_zero_batches_what_queued_while_the_writer_was_busy(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)
    futures = one_batch(committer, [insert(f"z{i}") for i in range(6)])  # exactly one batch
    assert [f.result() for f in futures] == [f"z{i}" for i in range(6)]
    assert names(probe_engine) == {f"z{i}" for i in range(6)}
    committer.close()


def test_the_app_shutdown_drains_and_stops_the_writer(db_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from talktime.api import create_app
    from talktime.config import Settings

    app = create_app(Settings(database_url=db_url, rate_cards_dir=str(tmp_path / "cards")))
    with TestClient(app):
        committer = committer_for(app.state.engine, enabled=True)
        assert committer is not None
        assert committer.submit(lambda conn: conn.execute(sa.text("SELECT 1")).scalar()) == 1
    assert committer.closed
    with pytest.raises(RuntimeError):
        committer.submit(lambda conn: None)


def test_awaited_units_share_batches_and_each_gets_its_own_outcome(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)

    async def main() -> list[Any]:
        units = [insert(f"a{i}") if i % 5 else refuse_after_insert(f"a{i}") for i in range(20)]
        return await asyncio.gather(*(committer.run(u) for u in units), return_exceptions=True)

    outcomes = asyncio.run(main())
    for i, outcome in enumerate(outcomes):
        if i % 5:
            assert outcome == f"a{i}"
        else:
            assert isinstance(outcome, ProbeRefusedError)
    assert names(probe_engine) == {f"a{i}" for i in range(20) if i % 5}
    committer.close()


def test_an_awaited_unit_is_answered_only_after_its_batch_committed(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(probe_engine, window_ms=0, turn=writer_turn)

    async def main() -> list[bool]:
        async def send(i: int) -> bool:
            name = await committer.run(insert(f"v{i}"))
            return name in names(probe_engine)

        return await asyncio.gather(*(send(i) for i in range(12)))

    assert all(asyncio.run(main()))
    committer.close()


def test_run_once_async_without_a_committer_commits_and_replays(probe_engine: sa.Engine) -> None:
    from talktime.service.idempotency import run_once_async

    def work(conn: sa.Connection) -> tuple[int, Any]:
        conn.execute(probe.insert().values(name="own"))
        return 201, {"name": "own"}

    account = make_account(probe_engine)

    async def twice() -> tuple[Any, Any]:
        first = await run_once_async(probe_engine, account, "k1", "probe", {"x": 1}, work)
        again = await run_once_async(probe_engine, account, "k1", "probe", {"x": 1}, work)
        return first, again

    first, again = asyncio.run(twice())
    assert (again.status, again.body) == (first.status, first.body)
    assert (first.replayed, again.replayed) == (False, True)
    assert names(probe_engine) == {"own"}


def test_units_queued_while_the_writer_awaits_its_turn_join_its_batch(
    probe_engine: sa.Engine,
) -> None:
    waiting, release = threading.Event(), threading.Event()
    held = threading.Lock()

    @contextmanager
    def slow_turn(engine: sa.Engine) -> Iterator[None]:
        waiting.set()  # e.g. another process holds the SQLite writer lock
        release.wait(10)
        with held:
            yield

    committer = GroupCommitter(probe_engine, window_ms=0, turn=slow_turn)
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(committer.submit, insert("t0"))
        assert waiting.wait(10)
        rest = [pool.submit(committer.submit, insert(f"t{i}")) for i in (1, 2)]
        while committer.waiting < 2:
            threading.Event().wait(0.001)
        release.set()
        assert [f.result(10) for f in (first, *rest)] == ["t0", "t1", "t2"]
    assert committer.batches == 1
    committer.close()


class _Joint:
    """A unit that can also run in one pass with its kind (``together``)."""

    def __init__(self, name: str, together: Callable[[sa.Connection, list[Any]], Any]) -> None:
        self.name = name
        self.together = together

    def __call__(self, conn: sa.Connection) -> str:
        conn.execute(probe.insert().values(name=f"alone-{self.name}"))
        return f"alone-{self.name}"


def _batch(engine: sa.Engine, units: list[Any]) -> tuple[list[Any], bool | None]:
    from talktime.service.groupcommit import _Pending, _run_batch
    from talktime.store.reuse import ConnectionStack

    stack = ConnectionStack(engine, keep=1)
    try:
        outcomes, _, ran = _run_batch(stack, [_Pending(u, lambda ok, v: None) for u in units])
    finally:
        stack.close()
    return outcomes, ran


def test_units_that_share_a_pass_run_together_in_one_call(probe_engine: sa.Engine) -> None:
    calls: list[list[str]] = []

    def together(conn: sa.Connection, units: list[Any]) -> list[tuple[bool, Any]]:
        calls.append([u.name for u in units])
        conn.execute(probe.insert(), [{"name": f"together-{u.name}"} for u in units])
        return [(True, f"together-{u.name}") for u in units]

    outcomes, ran = _batch(probe_engine, [_Joint("a", together), _Joint("b", together)])
    assert ran is True
    assert calls == [["a", "b"]]
    assert outcomes == [(True, "together-a"), (True, "together-b")]
    assert names(probe_engine) == {"together-a", "together-b"}


def _raises(conn: sa.Connection, units: list[Any]) -> list[tuple[bool, Any]]:
    conn.execute(probe.insert().values(name="half-done"))
    raise RuntimeError("the pass cannot take this batch")


def _answers_one(conn: sa.Connection, units: list[Any]) -> list[tuple[bool, Any]]:
    conn.execute(probe.insert().values(name="half-done"))
    return [(True, "one")]  # for two units


@pytest.mark.parametrize("together", [_raises, _answers_one], ids=["raises", "answers-one"])
def test_a_pass_that_raises_or_miscounts_keeps_nothing_it_wrote_and_its_units_run_alone(
    probe_engine: sa.Engine, together: Callable[[sa.Connection, list[Any]], Any]
) -> None:
    outcomes, ran = _batch(probe_engine, [_Joint("a", together), _Joint("b", together)])
    assert ran is False
    assert outcomes == [(True, "alone-a"), (True, "alone-b")]
    assert names(probe_engine) == {"alone-a", "alone-b"}


def test_units_of_different_kinds_or_alone_run_one_by_one(probe_engine: sa.Engine) -> None:
    def together(conn: sa.Connection, units: list[Any]) -> list[tuple[bool, Any]]:
        raise AssertionError("never called")

    def other(conn: sa.Connection, units: list[Any]) -> list[tuple[bool, Any]]:
        raise AssertionError("never called")

    mixed = [_Joint("a", together), _Joint("b", other)]
    assert _batch(probe_engine, mixed) == ([(True, "alone-a"), (True, "alone-b")], None)
    assert _batch(probe_engine, [_Joint("c", together), insert("d")]) == (
        [(True, "alone-c"), (True, "d")],
        None,
    )
    assert _batch(probe_engine, [_Joint("e", together)]) == ([(True, "alone-e")], None)
    assert names(probe_engine) == {"alone-a", "alone-b", "alone-c", "d", "alone-e"}
