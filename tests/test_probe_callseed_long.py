"""Very long calls over the API: a call never holds more time than a completion can report (a
leg lasts at most a week); on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import _client
from talktime.rating.card import MAX_LEG_SECONDS

import apikit
from apikit import tenant

WEEK = 7 * 24 * 3600


@pytest.fixture
def week_api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with the longest hold window the settings allow (a week per step)."""
    yield from _client(db_url, tmp_path, call_hold_seconds=WEEK)


@pytest.fixture
def day_api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app holding 100,000 s per step: a week is not a whole number of steps."""
    yield from _client(db_url, tmp_path, call_hold_seconds=100_000)


def _authorize(t: apikit.Tenant) -> dict[str, Any]:
    response = t.authorize()
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def test_a_call_holding_a_week_is_not_extended_past_what_a_completion_can_bill(
    week_api: TestClient,
) -> None:
    assert MAX_LEG_SECONDS == WEEK
    t = tenant(week_api, plan="business", credit="1000.00")
    call = _authorize(t)
    # 10,080 minutes x $0.013 = $131.04
    assert (call["max_duration_seconds"], call["held"]) == (WEEK, "131.0400")
    before = t.balance()
    refused = t.post(f"/v1/calls/{call['id']}/extend", {})
    # Before: 200, two weeks held ($262.08), and completing with that duration was a 422.
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "call_not_active"
    assert "a week" in problem["detail"]
    assert "complete it" in problem["detail"]
    assert t.balance() == before
    assert t.get(f"/v1/calls/{call['id']}").json()["held"] == "131.0400"
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": WEEK})
    assert done.status_code == 200, done.text
    assert (done.json()["amount"], done.json()["uncollected"]) == ("131.0400", "0.0000")
    assert t.balance()["held"] == "0.0000"


def test_extending_step_by_step_stops_at_a_week(day_api: TestClient) -> None:
    """The extend that would pass a week holds exactly up to it, and the next is refused."""
    t = tenant(day_api, plan="business", credit="1000.00")
    call = _authorize(t)
    assert call["max_duration_seconds"] == 99_960  # whole minutes within 100,000 s
    covered = [call["max_duration_seconds"]]
    for _ in range(6):
        response = t.post(f"/v1/calls/{call['id']}/extend", {})
        assert response.status_code == 200, response.text
        covered.append(response.json()["max_duration_seconds"])
    assert covered == [99_960 * n for n in range(1, 7)] + [WEEK]
    assert response.json()["held"] == "131.0400"
    refused = t.post(f"/v1/calls/{call['id']}/extend", {})
    assert (refused.status_code, refused.json()["code"]) == (409, "call_not_active")
    done = t.post(f"/v1/calls/{call['id']}/complete", {"duration": WEEK})
    assert (done.status_code, done.json()["amount"]) == (200, "131.0400")
