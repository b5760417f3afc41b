"""`GET /metrics` shows this process's group-commit writer: batches, units, the time it held
its turn, the time in COMMIT, and the batches run in one pass (or handed back to the one-by-one
path), labelled with the worker's pid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from conftest import _client

from apikit import tenant

WRITER = (
    "talktime_group_commit_batches_total",
    "talktime_group_commit_units_total",
    "talktime_group_commit_batch_seconds_total",
    "talktime_group_commit_commit_seconds_total",
    "talktime_group_commit_together_total",
    "talktime_group_commit_fallbacks_total",
    "talktime_group_commit_waiting",
)


def _writer(client: Any) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name in WRITER:
                assert s.labels == {"pid": str(os.getpid())}
                out[s.name] = s.value
    return out


def test_group_commit_metrics_count_every_send_its_batches_and_the_time_held(api: Any) -> None:
    t = tenant(api, credit="5.00")
    before = _writer(api)
    assert set(before) == set(WRITER)
    for _ in range(3):
        assert t.sms("+14155550111").status_code == 201
    after = _writer(api)
    grew = {name: after[name] - before[name] for name in WRITER}
    # one request at a time: each send is a batch of its own
    assert grew["talktime_group_commit_units_total"] == 3
    assert grew["talktime_group_commit_batches_total"] == 3
    assert grew["talktime_group_commit_together_total"] == 0  # a pass needs two units
    assert grew["talktime_group_commit_fallbacks_total"] == 0
    committing = grew["talktime_group_commit_commit_seconds_total"]
    assert 0 < committing < grew["talktime_group_commit_batch_seconds_total"]
    assert after["talktime_group_commit_waiting"] == 0


def test_group_commit_metrics_stay_at_zero_when_group_commit_is_off(
    db_url: str, tmp_path: Path
) -> None:
    for client in _client(db_url, tmp_path, group_commit=False):
        t = tenant(client, credit="5.00")
        assert t.sms("+14155550111").status_code == 201
        assert _writer(client) == dict.fromkeys(WRITER, 0.0)
