"""The retry schedule of a webhook delivery, as documented: 30 s doubling, each wait at most 4 h,
for 24 hours; a redelivery's fresh 24-hour window starts the schedule again, and the reason an
endpoint is disabled counts the attempts of the window that gave up."""

from __future__ import annotations

import sqlalchemy as sa

from talktime.ops import webhooks
from talktime.ops.clock import HOUR, SECOND

from ops_helpers import disabled_reason, hooked_event, next_run_at, run_due

SCHEDULE_S = [0, 30, 90, 210, 450, 930, 1890, 3810, 7650, 15330, 29730, 44130, 58530, 72930]


def _attempt_times(engine: sa.Engine, settings: object, start: int) -> list[float]:
    """Run every due delivery job on a fake clock until none is left; when each ran (s)."""
    times = []
    while (at := next_run_at(engine)) is not None:
        times.append((at - start) / SECOND)
        run_due(engine, settings, at)  # type: ignore[arg-type]
    return times


def test_a_failing_delivery_is_retried_until_its_24_hours_are_up_before_disabling(
    engine: sa.Engine,
) -> None:
    with hooked_event(engine, [500]) as (account, settings, t0, _, endpoint):
        times = _attempt_times(engine, settings, t0)
    # the documented schedule, then a last attempt when the 24 hours end (it gave up at 20.3 h)
    assert times == [*SCHEDULE_S, 24 * 3600]
    reason = disabled_reason(engine, account, endpoint.id)
    assert "failed for 24 hours (15 attempts, last: 500)" in reason


def test_a_redelivery_retries_on_the_documented_schedule_from_its_start(
    engine: sa.Engine,
) -> None:
    with hooked_event(engine, [500]) as (account, settings, t0, _, endpoint):
        _attempt_times(engine, settings, t0)
        webhooks.update_endpoint(engine, settings, account, endpoint.id, enabled=True)
        [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
        t1 = t0 + 48 * HOUR
        webhooks.redeliver(engine, account, delivery["id"], now=t1)
        # it waited 4 hours after every failed attempt (7 attempts in the "fresh" window)
        assert _attempt_times(engine, settings, t1) == [*SCHEDULE_S, 24 * 3600]
    reason = disabled_reason(engine, account, endpoint.id)
    # the 15 attempts of the redelivery's 24 hours, not every attempt since the event (30)
    assert "failed for 24 hours (15 attempts, last: 500)" in reason


def test_a_delivery_first_attempted_a_day_late_is_retried_for_24_hours_before_disabling(
    engine: sa.Engine,
) -> None:
    with hooked_event(engine, [500]) as (account, settings, t0, hook, endpoint):
        late = t0 + 25 * HOUR  # the worker was down for a day after the dispatch
        # it was disabled at once: "failed for 24 hours (1 attempts, last: 500)"
        assert run_due(engine, settings, late) == ["pending"]
        assert webhooks.get_endpoint(engine, account, endpoint.id).enabled
        assert _attempt_times(engine, settings, late) == [*SCHEDULE_S[1:], 24 * 3600]
        assert len(hook.requests) == 15
    reason = disabled_reason(engine, account, endpoint.id)
    assert "failed for 24 hours (15 attempts, last: 500)" in reason
