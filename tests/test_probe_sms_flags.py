"""Segmenting a long run of regional indicators (flags) takes time linear in its length: the
grapheme cut looked each cluster up with the `regex` module from its position in the whole text,
and `\\X` there counts every regional indicator before it (GB12/GB13 parity), so 16,000 of them
(a 64 KiB body to the public `POST /v1/sms/segments`) took over a second of CPU."""

from __future__ import annotations

import time

from talktime.sms import segment
from test_sms_properties import reference


def _cpu(text: str) -> float:
    start = time.process_time()
    segment(text)
    return time.process_time() - start


def test_a_long_run_of_flags_segments_in_linear_time() -> None:
    small = min(_cpu("🇺🇸" * 1000) for _ in range(3))
    large = min(_cpu("🇺🇸" * 8000) for _ in range(3))  # 8x the text
    assert large < 0.25, large  # was 1.3 s
    assert large < 8 * 4 * max(small, 0.001), (small, large)


def test_runs_of_flags_split_as_the_reference_does() -> None:
    for n in (33, 34, 67, 68, 200, 1001):
        for lead in ("", "a", "🇺", "👩\u200d🦰", "e" + "\u0301" * 80):
            text = lead + "🇺🇸" * n + lead
            result = segment(text)
            assert (result.encoding, result.units, list(result.parts)) == reference(text)
