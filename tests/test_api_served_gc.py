"""The served app freezes its start-up heap and raises the collector's thresholds; an app
built by `create_app` (as tests and embedders do) leaves the process's collector alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from talktime.api.app import SERVED_GC_THRESHOLD

SCRIPT = """
import gc, json
from fastapi.testclient import TestClient
from talktime.api.app import create_app, create_served_app
before = gc.get_threshold()
with TestClient(create_app()):
    plain = (gc.get_threshold(), gc.get_freeze_count())
with TestClient(create_served_app()):
    served = (gc.get_threshold(), gc.get_freeze_count())
print(json.dumps([before, plain, served]))
"""


def test_the_served_app_freezes_the_heap_and_raises_the_gc_thresholds_a_plain_app_does_not(
    tmp_path: Path,
) -> None:
    env = {
        "TALKTIME_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "TALKTIME_CONFIG": "",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    ).stdout
    before, plain, served = json.loads(out)
    assert before == [700, 10, 10]
    assert plain == [[700, 10, 10], 0]
    assert served[0] == list(SERVED_GC_THRESHOLD)
    assert served[1] > 1000  # objects frozen out of the collector's generations
