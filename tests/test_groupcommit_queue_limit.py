"""The group committer's queue limit: a unit that finds the queue full waits for room at most
the queue timeout from its arrival, however many wait (awaiting requests park no thread), and
then is refused `service_busy`; every unit that got room is answered once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from gcprobe import insert, names, probe_table
from talktime.service.groupcommit import GroupCommitter, WriterBusyError
from talktime.service.room import Room
from talktime.store.writer import writer_turn


@pytest.fixture
def probe_engine(engine: sa.Engine) -> Iterator[sa.Engine]:
    with probe_table(engine):
        yield engine


class Gate:
    """A unit that holds the writer inside its batch until `open`."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, conn: sa.Connection) -> str:
        self.entered.set()
        self.release.wait(30)
        return "gate"

    def open(self) -> None:
        self.release.set()


async def _fill(committer: GroupCommitter, gate: Gate, queued: int) -> list[asyncio.Task[Any]]:
    """The writer held by ``gate`` and ``queued`` units waiting behind it (the queue full)."""
    tasks = [asyncio.ensure_future(committer.run(gate))]
    while not gate.entered.is_set():
        await asyncio.sleep(0.001)
    for i in range(queued):
        tasks.append(asyncio.ensure_future(committer.run(insert(f"queued{i}"))))
        while committer.waiting < i + 1:
            await asyncio.sleep(0.001)
    return tasks


TIMEOUT = 0.4
OVERFLOW = 60  # ten times the event loop's default executor threads on this 2-CPU machine


def test_every_awaited_unit_beyond_the_queue_limit_is_refused_within_the_queue_timeout(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(
        probe_engine, window_ms=0, max_queue=1, queue_timeout_s=TIMEOUT, turn=writer_turn
    )
    gate = Gate()

    async def overflow(i: int) -> float | None:
        arrived = time.monotonic()
        try:
            await committer.run(insert(f"over{i}"))
        except WriterBusyError:
            return time.monotonic() - arrived
        return None

    async def main() -> tuple[list[float | None], list[Any]]:
        admitted = await _fill(committer, gate, queued=1)
        waits = await asyncio.gather(*(overflow(i) for i in range(OVERFLOW)))
        gate.open()
        return waits, await asyncio.gather(*admitted)

    try:
        waits, answers = asyncio.run(main())
    finally:
        gate.open()
    assert answers == ["gate", "queued0"]
    assert all(w is not None for w in waits), waits
    refused = [w for w in waits if w is not None]
    assert min(refused) >= 0.9 * TIMEOUT  # each waited for room
    assert max(refused) < 3 * TIMEOUT, sorted(refused)  # in the executor: 10 x TIMEOUT
    assert names(probe_engine) == {"queued0"}
    committer.close()


def test_units_waiting_for_room_from_coroutines_and_threads_all_run_once_when_it_frees(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(
        probe_engine, window_ms=0, max_batch=4, max_queue=2, queue_timeout_s=30, turn=writer_turn
    )
    gate = Gate()
    pool = ThreadPoolExecutor(max_workers=10)

    async def main() -> tuple[list[Any], list[Any]]:
        admitted = await _fill(committer, gate, queued=2)
        awaited = [asyncio.ensure_future(committer.run(insert(f"a{i}"))) for i in range(40)]
        threads = [pool.submit(committer.submit, insert(f"t{i}")) for i in range(10)]
        await asyncio.sleep(0.2)  # all of them waiting for room
        assert not any(t.done() for t in awaited)
        assert not any(t.done() for t in threads)
        gate.open()
        answers = await asyncio.gather(*admitted, *awaited)
        return answers, [t.result(30) for t in threads]

    try:
        answers, from_threads = asyncio.run(main())
    finally:
        gate.open()
        pool.shutdown()
    assert answers == ["gate", "queued0", "queued1", *(f"a{i}" for i in range(40))]
    assert from_threads == [f"t{i}" for i in range(10)]
    assert names(probe_engine) == {
        "queued0",
        "queued1",
        *(f"a{i}" for i in range(40)),
        *(f"t{i}" for i in range(10)),
    }
    committer.close()


def test_a_cancelled_wait_for_room_hands_its_place_on_and_its_unit_never_runs(
    probe_engine: sa.Engine,
) -> None:
    committer = GroupCommitter(
        probe_engine, window_ms=0, max_queue=1, queue_timeout_s=30, turn=writer_turn
    )
    gate = Gate()

    async def main() -> list[Any]:
        admitted = await _fill(committer, gate, queued=1)
        gone = asyncio.ensure_future(committer.run(insert("gone")))
        after = asyncio.ensure_future(committer.run(insert("after")))
        await asyncio.sleep(0.1)
        gone.cancel()  # its client went away while it waited for room
        await asyncio.sleep(0.05)
        gate.open()
        answers = await asyncio.gather(*admitted, after)
        assert gone.cancelled()
        return answers

    try:
        answers = asyncio.run(main())
    finally:
        gate.open()
    assert answers == ["gate", "queued0", "after"]
    assert names(probe_engine) == {"queued0", "after"}
    assert committer.waiting == 0
    committer.close()


def test_a_wait_cancelled_in_the_tick_its_place_is_handed_over_is_cancelled_and_frees_it() -> None:
    """On Python 3.11 `asyncio.wait_for` returned the result when its task was cancelled in
    the loop tick the place arrived: the cancelled request went on and its unit ran."""

    async def scenario() -> tuple[bool, list[bool], int]:
        room = Room(1)
        assert room.take(time.monotonic())
        carried_on: list[bool] = []

        async def waiter() -> None:
            carried_on.append(await room.take_async(time.monotonic() + 5))

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0.01)  # it waits for a place
        room.give_back()  # handed over (its wake-up is scheduled)
        asyncio.get_running_loop().call_soon(task.cancel)  # the client goes meanwhile
        cancelled = False
        try:
            await task
        except asyncio.CancelledError:
            cancelled = True
        return cancelled, carried_on, room._taken

    assert asyncio.run(scenario()) == (True, [], 0)
