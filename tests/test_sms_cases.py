"""Hand-checked segmentation cases: the boundaries, escapes, emoji, shift tables and bad input."""

from __future__ import annotations

import pytest

from talktime.errors import TalktimeError
from talktime.sms import InvalidTextError, SegmentOptionError, segment

# (text, encoding, segments, units, part lengths in code points)
CASES = [
    pytest.param("", "GSM-7", 1, 0, [0], id="empty-is-one-gsm-part"),
    pytest.param("a" * 160, "GSM-7", 1, 160, [160], id="160-fits-one-part"),
    pytest.param("a" * 161, "GSM-7", 2, 161, [153, 8], id="161-needs-two"),
    pytest.param("a" * 306, "GSM-7", 2, 306, [153, 153], id="306-fills-two"),
    pytest.param("a" * 307, "GSM-7", 3, 307, [153, 153, 1], id="307-needs-three"),
    pytest.param("€" * 80, "GSM-7", 1, 160, [80], id="80-euros-are-160-septets"),
    pytest.param("€" * 81, "GSM-7", 2, 162, [76, 5], id="81-euros-split-before-an-escape"),
    # extension char whose escape is septet 153: the pair moves to part 2 whole
    pytest.param("a" * 152 + "€" + "b" * 10, "GSM-7", 2, 164, [152, 11], id="escape-at-153"),
    pytest.param("a" * 151 + "€" + "b" * 10, "GSM-7", 2, 163, [152, 10], id="escape-ends-153"),
    pytest.param("😀" * 35, "UCS-2", 1, 70, [35], id="35-emoji-fill-70-units"),
    pytest.param("a" * 69 + "😀", "UCS-2", 2, 71, [67, 3], id="emoji-over-70"),
    pytest.param("a" * 68 + "😀", "UCS-2", 1, 70, [69], id="emoji-ends-at-70"),
    # the emoji's high surrogate would be unit 67: the pair moves to part 2
    pytest.param("a" * 66 + "😀" + "b" * 10, "UCS-2", 2, 78, [66, 11], id="surrogate-at-67"),
    pytest.param("a" * 65 + "😀" + "b" * 10, "UCS-2", 2, 77, [66, 10], id="surrogate-ends-67"),
    pytest.param("ç", "UCS-2", 1, 1, [1], id="small-c-cedilla-is-not-gsm"),
    pytest.param("Ç", "GSM-7", 1, 1, [1], id="capital-c-cedilla-is-gsm"),
    pytest.param("\x1b(", "UCS-2", 1, 2, [2], id="raw-esc-forces-ucs2"),
    pytest.param("é" * 161, "GSM-7", 2, 161, [153, 8], id="e-acute-is-gsm"),
    pytest.param("日本語" * 23 + "日", "UCS-2", 1, 70, [70], id="70-cjk-one-part"),
    pytest.param("日" * 71, "UCS-2", 2, 71, [67, 4], id="71-cjk-two-parts"),
]


@pytest.mark.parametrize(("text", "encoding", "segments", "units", "lengths"), CASES)
def test_hand_checked_case(
    text: str, encoding: str, segments: int, units: int, lengths: list[int]
) -> None:
    s = segment(text)
    assert (s.encoding, s.segments, s.units) == (encoding, segments, units)
    assert [len(p) for p in s.parts] == lengths
    assert "".join(s.parts) == text
    assert s.text == text


def test_empty_text_is_one_gsm_part_with_full_room() -> None:
    s = segment("")
    assert s.parts == ("",)
    assert s.remaining == 160


def test_remaining_counts_units_left_in_last_part() -> None:
    assert segment("a" * 150).remaining == 10
    assert segment("a" * 161).remaining == 153 - 8
    assert segment("a" * 300 + "€").remaining == 153 - (302 - 153)
    assert segment("😀" * 10).remaining == 50


def test_non_str_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        segment(b"hello")  # type: ignore[arg-type]


def test_lone_surrogate_is_invalid_text() -> None:
    with pytest.raises(InvalidTextError) as info:
        segment("ok \ud83d")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TalktimeError)
    assert info.value.code == "invalid_text"
    assert info.value.status == 422
    assert "surrogate" in info.value.detail


def test_unknown_language_and_split_are_refused() -> None:
    with pytest.raises(SegmentOptionError):
        segment("x", language="fr")  # type: ignore[arg-type]
    with pytest.raises(SegmentOptionError):
        segment("x", split="word")  # type: ignore[arg-type]
