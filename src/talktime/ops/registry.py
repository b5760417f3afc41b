"""Which job kinds the worker can run, and which periodic tasks it schedules.

Handlers register by kind (`@handler("webhooks.deliver")`). Periodic tasks name a kind and an
interval; a task whose implementation is not installed (e.g. a wallet function missing from this
build) is listed with the reason instead of failing silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from talktime.config import Settings
from talktime.ops.jobs import Job


@dataclass(frozen=True)
class JobContext:
    """What a handler gets besides its job: the database, the settings and the worker's name."""

    engine: sa.Engine
    settings: Settings
    worker: str
    now: Callable[[], int]


Handler = Callable[[JobContext, Job], None]


@dataclass(frozen=True)
class Periodic:
    """A task the worker queues once per `interval_us` slot (dedupe key: name + slot)."""

    kind: str
    interval_us: int
    description: str


@dataclass(frozen=True)
class Tick:
    """Work done on every pass of the worker loop, outside the queue (must be safe to run
    concurrently in many workers): `fn(engine, worker_name, now_us) -> items handled`."""

    name: str
    fn: Callable[[sa.Engine, str, int], int]
    description: str


HANDLERS: dict[str, Handler] = {}
TICKS: dict[str, Tick] = {}
PERIODIC: dict[str, Periodic] = {}
UNAVAILABLE: dict[str, str] = {}


DESCRIPTIONS: dict[str, str] = {}


def handler(kind: str, description: str = "") -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of jobs of `kind`."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        DESCRIPTIONS[kind] = description or (fn.__doc__ or "").strip().split("\n")[0]
        UNAVAILABLE.pop(kind, None)
        return fn

    return register


def periodic(kind: str, interval_us: int, description: str) -> None:
    """Schedule jobs of `kind` every `interval_us` (one per slot across all workers)."""
    PERIODIC[kind] = Periodic(kind, interval_us, description)


def tick(name: str, fn: Callable[[sa.Engine, str, int], int], description: str) -> None:
    """Run `fn` on every pass of every worker's loop."""
    TICKS[name] = Tick(name, fn, description)


def unavailable(kind: str, reason: str) -> None:
    """Record that `kind` cannot run in this build, and why (shown by `talktime worker --list`)."""
    if kind not in HANDLERS:
        UNAVAILABLE[kind] = reason


def describe() -> list[dict[str, Any]]:
    """Every known kind: registered, periodic interval, or why it is unavailable."""
    kinds = sorted(set(HANDLERS) | set(PERIODIC) | set(UNAVAILABLE))
    out: list[dict[str, Any]] = [
        {
            "kind": t.name,
            "available": True,
            "every_seconds": "each pass",
            "description": t.description,
            "missing": None,
        }
        for t in TICKS.values()
    ]
    for kind in kinds:
        task = PERIODIC.get(kind)
        out.append(
            {
                "kind": kind,
                "available": kind in HANDLERS,
                "every_seconds": None if task is None else task.interval_us / 1_000_000,
                "description": task.description if task else DESCRIPTIONS.get(kind, ""),
                "missing": UNAVAILABLE.get(kind),
            }
        )
    return out
