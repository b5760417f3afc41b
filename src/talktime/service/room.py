"""A fixed number of places (the group committer's queue limit), taken by threads and by
coroutines and given back by another thread; who finds none waits, in arrival order, until a
place is handed to it or its deadline passes.

A waiting coroutine parks no thread: it awaits a future that the giver completes with
``loop.call_soon_threadsafe``, so any number of them wait at once and each one's wait ends at
its own deadline (waiting in the event loop's executor made the n-th wait for a free thread
first: 503s came at whole multiples of the timeout).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress


class _Waiter:
    """One waiting taker: ``granted`` is set (under the room's lock) when a place was handed
    to it, then ``wake`` is called."""

    __slots__ = ("granted", "wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.granted = False
        self.wake = wake


class Room:
    """``capacity`` places. A place given back goes to the longest waiting taker, if any; a
    new taker waits behind those already waiting. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity >= 1 is required")
        self._capacity = capacity
        self._taken = 0
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    def _take_now(self) -> bool:
        """Take a free place if one is free and nobody waits (under the lock)."""
        if self._waiters or self._taken >= self._capacity:
            return False
        self._taken += 1
        return True

    def take(self, deadline: float) -> bool:
        """Take a place, blocking the calling thread until ``deadline`` (`time.monotonic`) at
        the latest; whether it got one."""
        event = threading.Event()
        with self._lock:
            if self._take_now():
                return True
            waiter = _Waiter(event.set)
            self._waiters.append(waiter)
        event.wait(max(0.0, deadline - time.monotonic()))
        return self._settle(waiter)

    async def take_async(self, deadline: float) -> bool:
        """`take` for a coroutine: awaits the place on the event loop (no thread waits)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._take_now():
                return True
            handed: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                with suppress(RuntimeError):  # the loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(_finish, handed)

            waiter = _Waiter(wake)
            self._waiters.append(waiter)
        try:
            # `wait`, not `wait_for`: on Python 3.11 `wait_for` returns the result when its task
            # is cancelled in the tick the place is handed over, and a cancelled request ran
            await asyncio.wait({handed}, timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:  # cancelled: a place handed over meanwhile goes to the next
            if self._settle(waiter):
                self.give_back()
            raise
        return self._settle(waiter)

    def _settle(self, waiter: _Waiter) -> bool:
        """End ``waiter``'s wait: True if a place was handed to it (a hand-over that raced its
        deadline counts), else it leaves the line."""
        with self._lock:
            if waiter.granted:
                return True
            self._waiters.remove(waiter)
            return False

    def give_back(self) -> None:
        """Free a place: handed to the longest waiting taker, if any."""
        with self._lock:
            if not self._waiters:
                self._taken -= 1
                return
            waiter = self._waiters.popleft()
            waiter.granted = True
            waiter.wake()


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():  # its wait timed out or was cancelled: the grant is seen by _settle
        future.set_result(None)
