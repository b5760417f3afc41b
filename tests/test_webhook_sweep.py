"""A webhook delivery whose job was given up (its workers died five times mid-attempt) is not
lost: the periodic sweep queues a new attempt for it, and gives up on it only after its 24
hours. Before, the delivery stayed `pending` for ever and its event was never sent."""

from __future__ import annotations

import sqlalchemy as sa

from talktime.ops import jobs, webhooks
from talktime.ops.clock import HOUR, SECOND

from ops_helpers import hooked_event


def _lose_the_job(engine: sa.Engine, start: int) -> int:
    """Five workers each claim the delivery's job and die; returns the time after the last."""
    t = start
    for i in range(5):
        claimed = jobs.claim(engine, f"dead-{i}", now=t, lease_us=SECOND, kinds=(webhooks.DELIVER,))
        assert len(claimed) == 1
        t += 2 * SECOND
    assert jobs.claim(engine, "alive", now=t, kinds=(webhooks.DELIVER,)) == []  # given up
    return t


def test_a_delivery_whose_job_was_given_up_is_queued_again_and_sent(engine: sa.Engine) -> None:
    with hooked_event(engine, [200]) as (account, settings, start, hook, endpoint):
        [pending] = webhooks.list_deliveries(engine, account, endpoint.id)
        t = _lose_the_job(engine, start + SECOND)
        # too soon: the delivery is not overdue yet
        assert webhooks.sweep(engine, now=t) == 0
        later = start + webhooks.STALE_US + SECOND
        assert webhooks.sweep(engine, now=later) == 1
        assert webhooks.sweep(engine, now=later + SECOND) == 0  # its job is waiting: once only
        [job] = jobs.claim(engine, "alive", now=later + SECOND, kinds=(webhooks.DELIVER,))
        delivery_id = int(job.payload["delivery_id"])
        assert webhooks.deliver(engine, settings, delivery_id, now=later + SECOND) == "delivered"
        assert hook.ids() == [pending["event_id"]]
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    assert delivery["state"] == "delivered"


def test_a_delivery_lost_past_its_24_hours_is_failed_not_retried_for_ever(
    engine: sa.Engine,
) -> None:
    with hooked_event(engine, [200]) as (account, _settings, start, hook, endpoint):
        _lose_the_job(engine, start + SECOND)
        assert webhooks.sweep(engine, now=start + 25 * HOUR) == 0
        assert hook.ids() == []
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    assert delivery["state"] == "failed"
