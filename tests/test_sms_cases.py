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
    # the second seed page: a unit "can contain as little as 33 characters" (emoji, 2 units each)
    pytest.param("😀" * 66, "UCS-2", 2, 132, [33, 33], id="66-emoji-are-two-parts-of-33"),
    pytest.param("😀" * 67, "UCS-2", 3, 134, [33, 33, 1], id="67-emoji-need-three"),
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


# --- grapheme clusters versus code points ------------------------------------------------------

REDHEAD = "👩\u200d🦰"  # woman + ZWJ + red hair: 5 UTF-16 units, one user-perceived character
SANTA = "🧑\u200d🎄"  # person + ZWJ + christmas tree (Unicode 13): 5 units


@pytest.mark.parametrize("emoji", [REDHEAD, SANTA], ids=["woman-red-hair", "mx-claus"])
def test_zwj_emoji_is_never_split_in_grapheme_mode(emoji: str) -> None:
    text = "a" * 64 + emoji + "b" * 65  # 134 units: exactly two full parts by code point
    by_cluster = segment(text)
    assert by_cluster.segments == 3
    assert by_cluster.parts == ("a" * 64, emoji + "b" * 62, "bbb")
    by_code_point = segment(text, split="code_point")
    assert by_code_point.segments == 2
    assert by_code_point.parts == ("a" * 64 + emoji[:2], emoji[2:] + "b" * 65)
    assert by_cluster.units == by_code_point.units == 134


@pytest.mark.parametrize(
    ("cluster", "units"),
    [
        pytest.param("🇫🇷", 4, id="flag"),
        pytest.param("👍🏽", 4, id="skin-tone"),
        pytest.param("1\ufe0f\u20e3", 3, id="keycap"),
        pytest.param("e\u0301", 2, id="combining-accent"),
        pytest.param("👨\u200d👩\u200d👧\u200d👦", 11, id="family"),
    ],
)
def test_cluster_straddling_a_boundary_moves_whole_to_next_part(cluster: str, units: int) -> None:
    before = 68 - units  # the cluster would end on unit 68, one past the part
    text = "日" * before + cluster + "日" * 10
    s = segment(text)
    assert s.units == before + units + 10
    assert s.parts[0] == "日" * before
    assert s.parts[1].startswith(cluster)
    cut = segment(text, split="code_point")  # strict TS 23.040: the cluster is cut
    assert cut.parts[0].startswith("日" * before + cluster[0])
    assert not cut.parts[1].startswith(cluster)


def test_cluster_longer_than_a_part_falls_back_to_code_points() -> None:
    text = "x" * 10 + "e" + "\u0301" * 80  # one 81-unit cluster after 10 units
    s = segment(text)
    assert [len(p) for p in s.parts] == [67, 24]
    assert s.parts == segment(text, split="code_point").parts


def test_crlf_is_kept_whole_in_grapheme_mode_only() -> None:
    text = "a" * 152 + "\r\n" + "b" * 10
    assert segment(text).parts == ("a" * 152, "\r\n" + "b" * 10)
    assert segment(text, split="code_point").parts == ("a" * 152 + "\r", "\n" + "b" * 10)


def test_non_gsm_lists_distinct_forcing_characters_in_order() -> None:
    s = segment("Olá ça va 😀 ça 😀")
    assert s.non_gsm == ("á", "ç", "😀")
    assert segment("plain").non_gsm == ()


# --- national language shift tables ------------------------------------------------------------


def test_turkish_locking_shift_keeps_turkish_gsm() -> None:
    assert segment("ş" * 155).encoding == "UCS-2"
    s = segment("ş" * 155, language="tr")
    assert (s.encoding, s.segments, s.units, s.part_capacity) == ("GSM-7", 1, 155, 155)
    assert (s.locking_shift, s.single_shift) == ("tr", None)
    two = segment("ş" * 156, language="tr")
    assert (two.segments, two.part_capacity) == (2, 149)
    assert [len(p) for p in segment("ş" * 300, language="tr").parts] == [149, 149, 2]


def test_turkish_single_shift_when_default_letters_are_needed() -> None:
    s = segment("è ğ", language="tr")  # è is not in the Turkish locking table
    assert (s.encoding, s.units, s.locking_shift, s.single_shift) == ("GSM-7", 4, None, "tr")
    assert s.part_capacity == 155


def test_spanish_single_shift() -> None:
    assert segment("¿Qué tal? ñandú").encoding == "UCS-2"
    s = segment("¿Qué tal? ñandú", language="es")
    assert (s.encoding, s.units, s.single_shift, s.locking_shift) == ("GSM-7", 16, "es", None)
    assert segment("á" * 77, language="es").segments == 1  # 154 septets <= 155
    assert segment("á" * 78, language="es").segments == 2  # 156 septets > 155
    assert segment("á" * 78, language="es").part_capacity == 149
    assert segment("ç", language="es").encoding == "GSM-7"


def test_portuguese_locking_single_and_both() -> None:
    s = segment("não", language="pt")
    assert (s.units, s.locking_shift, s.single_shift, s.part_capacity) == (3, "pt", None, 155)
    single = segment("Φ não", language="pt")  # Φ is not in the Portuguese locking table
    assert (single.units, single.locking_shift, single.single_shift) == (6, None, "pt")
    both = segment("ª Φ", language="pt")  # ª only locking, Φ only default or single shift
    assert (both.units, both.locking_shift, both.single_shift) == (4, "pt", "pt")
    assert both.part_capacity == 152
    assert segment("ª" * 156, language="pt").part_capacity == 149


def test_shift_tables_unused_when_default_alphabet_suffices() -> None:
    s = segment("price: 5 €", language="pt")
    assert (s.units, s.locking_shift, s.single_shift, s.part_capacity) == (11, None, None, 160)


def test_text_no_table_combination_holds_is_ucs2() -> None:
    s = segment("ª è", language="pt")  # ª needs the locking table, which lacks è
    assert s.encoding == "UCS-2"
    assert s.non_gsm == ("ª",)


def test_esc_forces_ucs2_even_with_a_language() -> None:
    assert segment("ş\x1b", language="tr").encoding == "UCS-2"


# --- smart encoding ----------------------------------------------------------------------------


def test_smart_encoding_replaces_look_alikes_and_reports_them() -> None:
    text = "It’s “done” — see…\u00a0ok"
    assert segment(text).encoding == "UCS-2"
    s = segment(text, smart_encoding=True)
    assert s.encoding == "GSM-7"
    assert s.text == 'It\'s "done" - see... ok'
    assert s.replacements == (
        ("’", "'"),
        ("“", '"'),
        ("”", '"'),
        ("—", "-"),
        ("…", "..."),
        ("\u00a0", " "),
    )
    assert "".join(s.parts) == s.text


def test_smart_encoding_leaves_text_that_stays_ucs2() -> None:
    s = segment("It’s 😀", smart_encoding=True)
    assert (s.encoding, s.text, s.replacements) == ("UCS-2", "It’s 😀", ())


def test_smart_encoding_never_costs_more_segments() -> None:
    text = "…" * 200  # UCS-2: 3 parts; "..." * 200 = 600 septets: 4 parts
    s = segment(text, smart_encoding=True)
    assert (s.encoding, s.segments, s.replacements) == ("UCS-2", 3, ())


def test_smart_encoding_with_language() -> None:
    s = segment("Türkçe ‘şey’", smart_encoding=True, language="tr")
    assert s.encoding == "GSM-7"
    assert s.text == "Türkçe 'şey'"


def test_very_long_cluster_fills_every_part_by_code_point() -> None:
    text = "e" + "\u0301" * 1000  # one 1001-unit cluster
    s = segment(text)
    assert s.segments == 15
    assert [len(p) for p in s.parts] == [67] * 14 + [63]
    after = segment(text + "👍🏽" * 10)  # clusters after it are kept whole again
    assert after.parts[-1].endswith("👍🏽")
    assert all(p.count("🏽") == p.count("👍") for p in after.parts)


def test_to_dict_has_every_field() -> None:
    data = segment("Hi 😀").to_dict()
    assert set(data) >= {
        "encoding",
        "segments",
        "units",
        "parts",
        "non_gsm",
        "text",
        "replacements",
        "remaining",
    }
    assert data["non_gsm"] == ["😀"]
