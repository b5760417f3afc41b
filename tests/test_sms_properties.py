"""Properties of `segment`, and agreement with a straightforward reference written here.

The reference walks the text character by character (or cluster by cluster) with a cost per
character and the capacities computed from the UDH octets; it shares only the spec's table data
with the implementation, none of its logic (no fast paths, regexes or septet strings).
"""

from __future__ import annotations

import regex
from hypothesis import example, given, settings
from hypothesis import strategies as st

from talktime.sms import LOOK_ALIKES, Segmentation, segment
from talktime.sms.gsm import (
    DEFAULT_ALPHABET,
    DEFAULT_EXTENSION,
    LOCKING_SHIFT,
    SINGLE_SHIFT,
    Language,
)

# ---------------------------------------------------------------- the reference implementation


def _clusters(text: str, grapheme: bool) -> list[str]:
    return regex.findall(r"\X", text) if grapheme else list(text)


def _fill(items: list[tuple[str, int]], capacity: int) -> list[list[tuple[str, int]]]:
    """Greedy: each item goes in the current part if it fits, else it starts the next one."""
    parts: list[list[tuple[str, int]]] = [[]]
    used = 0
    for item in items:
        if used + item[1] > capacity:
            parts.append([])
            used = 0
        parts[-1].append(item)
        used += item[1]
    return parts


def reference(
    text: str, language: Language | None = None, split: str = "grapheme"
) -> tuple[str, int, list[str]]:
    """(encoding, units, parts) by the plain rules of TS 23.038 / 23.040."""
    grapheme = split == "grapheme"
    combos: list[tuple[Language | None, Language | None]] = [(None, None)]
    if language is not None:
        combos.append((None, language))
        if language in LOCKING_SHIFT:
            combos += [(language, None), (language, language)]
    found = []
    for lock, single in combos:
        cost: dict[str, int] = {}
        for char in (SINGLE_SHIFT[single] if single else DEFAULT_EXTENSION).values():
            cost[char] = 2
        for char in LOCKING_SHIFT[lock] if lock else DEFAULT_ALPHABET:
            if char != "\x1b":
                cost[char] = 1
        if not all(char in cost for char in text):
            continue
        shift_ies = (lock is not None) + (single is not None)
        single_capacity = 160 if shift_ies == 0 else (140 - 1 - 3 * shift_ies) * 8 // 7
        multi_capacity = (140 - 1 - 5 - 3 * shift_ies) * 8 // 7
        units = sum(cost[char] for char in text)
        if units <= single_capacity:
            parts = [text]
        else:
            items = [(c, sum(cost[ch] for ch in c)) for c in _clusters(text, grapheme)]
            parts = ["".join(c for c, _ in part) for part in _fill(items, multi_capacity)]
        found.append((len(parts), shift_ies, units, parts))
    if found:
        _, _, units, parts = min(found)
        return "GSM-7", units, parts

    def width(s: str) -> int:
        return sum(2 if ord(ch) > 0xFFFF else 1 for ch in s)

    units = width(text)
    if units <= 70:
        return "UCS-2", units, [text]
    items = []
    for cluster in _clusters(text, grapheme):
        if width(cluster) > 67:  # longer than a part: code point by code point
            items += [(ch, width(ch)) for ch in cluster]
        else:
            items.append((cluster, width(cluster)))
    return "UCS-2", units, ["".join(c for c, _ in part) for part in _fill(items, 67)]


# ---------------------------------------------------------------- text strategies

POOL = (
    list("abcXYZ019 .,!?@£$_\n\r")
    + list("€^{}[]~|\\\x0c")  # extension table
    + list("éèÇÄÖÑÜßΔΩ¿¡")  # default alphabet beyond ASCII
    + list("şŞğĞıİçáíóúÁÍÓÚãõâêôÀÂÊÔªº`∞")  # national tables
    + list("’“”—…\u00a0•\u200b")  # look-alikes
    + ["\x1b", "\t", "日", "語", "😀", "👍", "🏽", "\u200d", "🦰", "🎄", "🧑", "👩"]
    + ["🇫", "🇷", "\u0301", "\ufe0f", "\u20e3", "\u1100", "\u1161", "\u11a8", "\r\n"]
)
chars = st.one_of(
    st.sampled_from(POOL),
    st.characters(exclude_categories=("Cs",)),
)
texts = st.lists(chars, max_size=400).map("".join)
# texts hugging the part boundaries
near_boundary = st.builds(
    lambda n, pad, tail: pad * n + tail,
    st.sampled_from([65, 66, 67, 68, 69, 70, 133, 134, 135, 150, 152, 153, 154, 159, 160, 305]),
    st.sampled_from(["a", "ş", "á", "日", "€"]),
    st.lists(st.sampled_from(POOL), max_size=6).map("".join),
)
any_text = st.one_of(texts, near_boundary)
languages = st.sampled_from([None, "tr", "es", "pt"])
splits = st.sampled_from(["grapheme", "code_point"])


def _part_units(s: Segmentation, part: str) -> int:
    """UTF-16 units (UCS-2) or septets (GSM-7, an escaped character = ESC + char) of one part."""
    if s.encoding == "UCS-2":
        return len(part.encode("utf-16-le")) // 2  # raises on half a surrogate pair
    lock, single = s.locking_shift, s.single_shift
    extension = SINGLE_SHIFT[single] if single else DEFAULT_EXTENSION
    basic = set(LOCKING_SHIFT[lock] if lock else DEFAULT_ALPHABET) - {"\x1b"}
    escaped = set(extension.values()) - basic
    return len(part) + sum(ch in escaped for ch in part)


# ---------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(any_text, languages, splits, st.booleans())
@example("a" * 64 + "👩\u200d🦰" + "b" * 65, None, "grapheme", False)
@example("\r\n" * 90, None, "grapheme", False)
def test_parts_join_to_the_text_sent(
    text: str, language: Language | None, split: str, smart: bool
) -> None:
    s = segment(text, smart_encoding=smart, language=language, split=split)  # type: ignore[arg-type]
    assert "".join(s.parts) == s.text
    assert s.segments == len(s.parts)
    assert all(s.parts) or s.parts == ("",)
    if not smart:
        assert s.text == text
        assert s.replacements == ()


@settings(max_examples=200, deadline=None)
@given(any_text, languages, splits)
def test_every_part_is_within_capacity(text: str, language: Language | None, split: str) -> None:
    s = segment(text, language=language, split=split)  # type: ignore[arg-type]
    sizes = [_part_units(s, part) for part in s.parts]
    assert all(size <= s.part_capacity for size in sizes)
    assert s.remaining == s.part_capacity - sizes[-1]
    # greedy: what starts each next part would not have fitted in the part before it
    for size, following in zip(sizes, s.parts[1:], strict=False):
        first_char = _part_units(s, following[0])
        first_cluster = _part_units(s, regex.match(r"\X", following).group())
        assert size + first_char > s.part_capacity or (
            split == "grapheme" and size + first_cluster > s.part_capacity
        )


@settings(max_examples=200, deadline=None)
@given(any_text, languages, splits)
def test_no_part_ends_inside_an_escape_or_surrogate_pair(
    text: str, language: Language | None, split: str
) -> None:
    s = segment(text, language=language, split=split)  # type: ignore[arg-type]
    # Parts are strings of whole code points and characters; their units (each escaped character
    # = ESC + char, each astral character = 2 UTF-16 units, encoding refuses half a pair) add up
    # to the message's units, so no escape or surrogate pair straddles two parts.
    assert sum(_part_units(s, part) for part in s.parts) == s.units


@settings(max_examples=200, deadline=None)
@given(any_text, any_text, languages, splits)
def test_a_prefix_never_has_more_segments(
    prefix: str, rest: str, language: Language | None, split: str
) -> None:
    short = segment(prefix, language=language, split=split)  # type: ignore[arg-type]
    long = segment(prefix + rest, language=language, split=split)  # type: ignore[arg-type]
    if short.encoding == long.encoding:
        assert short.segments <= long.segments


@settings(max_examples=400, deadline=None)
@given(any_text, languages, splits)
@example("a" * 152 + "€" + "b", None, "grapheme")
@example("ş" * 150 + "è", "tr", "grapheme")
@example("x" * 10 + "e" + "\u0301" * 80, None, "grapheme")
@example("a" * 30 + "e" + "\u0301" * 150 + "👍🏽" * 20 + "🇫🇷" * 20, None, "grapheme")
@example("\u0915\u094d" * 40 + "\u0915" + "x" * 30, None, "grapheme")
def test_agrees_with_the_reference(text: str, language: Language | None, split: str) -> None:
    s = segment(text, language=language, split=split)  # type: ignore[arg-type]
    encoding, units, parts = reference(text, language, split)
    assert (s.encoding, s.units, s.segments) == (encoding, units, len(parts))
    assert list(s.parts) == parts


@settings(max_examples=200, deadline=None)
@given(any_text, languages)
def test_smart_encoding_never_costs_more(text: str, language: Language | None) -> None:
    plain = segment(text, language=language)
    smart = segment(text, smart_encoding=True, language=language)
    assert smart.segments <= plain.segments
    if smart.replacements:
        assert smart.encoding == "GSM-7"
        assert all(LOOK_ALIKES[old] == new for old, new in smart.replacements)
    else:
        assert smart == plain
