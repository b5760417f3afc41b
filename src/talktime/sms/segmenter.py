"""Split a message into SMS parts exactly as a carrier bills it (3GPP TS 23.038 and 23.040).

GSM-7 when every character is in a GSM-7 table (national language shift tables on request),
otherwise UCS-2; parts filled greedily, never splitting an escape pair, a surrogate pair or (by
default) a user-perceived character. Pure: no I/O, nothing cached that grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

import regex

from talktime.sms import smart
from talktime.sms.charset import (
    CHOICES,
    DEFAULT,
    OUTSIDE_ALL,
    UCS2_MULTI_UNITS,
    UCS2_SINGLE_UNITS,
    Charset,
)
from talktime.sms.errors import InvalidTextError, SegmentOptionError
from talktime.sms.gsm import ESC, LANGUAGES, Language
from talktime.sms.smart import Replacements

Encoding = Literal["GSM-7", "UCS-2"]
Split = Literal["grapheme", "code_point"]
SPLITS: Final[tuple[Split, ...]] = ("grapheme", "code_point")

_CLUSTER: Final = regex.compile(r"\X")
# Every extended grapheme cluster of two or more code points holds one of these (UAX #29 rules
# GB3-GB9c, GB11-GB13), so text without them splits the same by cluster and by code point.
_JOINER: Final = regex.compile(
    r"[\r\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=SpacingMark}\p{GCB=Prepend}"
    r"\p{GCB=Regional_Indicator}\p{GCB=L}\p{GCB=V}\p{GCB=T}]"
)
_ASTRAL: Final = re.compile("[\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Segmentation:
    """How a message is sent: its encoding, its parts and what they cost."""

    encoding: Encoding
    """"GSM-7" or "UCS-2"."""
    segments: int
    """Number of message parts: the billing unit."""
    units: int
    """Septets (GSM-7; an escaped character counts 2) or UTF-16 code units (UCS-2)."""
    parts: tuple[str, ...]
    """The text of each part exactly as sent; they join to `text`."""
    non_gsm: tuple[str, ...]
    """Distinct characters that forced UCS-2, in order of first appearance."""
    text: str
    """The text that is sent (differs from the input only with smart encoding)."""
    replacements: Replacements
    """What smart encoding replaced: ((look-alike, replacement), ...)."""
    remaining: int
    """Units left in the last part before one more character starts a new part."""
    part_capacity: int
    """Units one part holds for this message (160/153 GSM-7, 70/67 UCS-2, less with shifts)."""
    locking_shift: Language | None = None
    """National language locking shift table in use, if any."""
    single_shift: Language | None = None
    """National language single shift table in use, if any."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data with every field."""
        return {
            "encoding": self.encoding,
            "segments": self.segments,
            "units": self.units,
            "parts": list(self.parts),
            "non_gsm": list(self.non_gsm),
            "text": self.text,
            "replacements": [list(pair) for pair in self.replacements],
            "remaining": self.remaining,
            "part_capacity": self.part_capacity,
            "locking_shift": self.locking_shift,
            "single_shift": self.single_shift,
        }


_new = object.__new__


def _make(
    encoding: Encoding,
    units: int,
    parts: tuple[str, ...],
    non_gsm: tuple[str, ...],
    text: str,
    replacements: Replacements,
    remaining: int,
    part_capacity: int,
    locking_shift: Language | None = None,
    single_shift: Language | None = None,
) -> Segmentation:
    # The hot path: fills the frozen instance's __dict__ directly (a third of __init__'s cost).
    result: Segmentation = _new(Segmentation)
    result.__dict__.update(
        encoding=encoding,
        segments=len(parts),
        units=units,
        parts=parts,
        non_gsm=non_gsm,
        text=text,
        replacements=replacements,
        remaining=remaining,
        part_capacity=part_capacity,
        locking_shift=locking_shift,
        single_shift=single_shift,
    )
    return result


def segment(
    text: str,
    smart_encoding: bool = False,
    language: Language | None = None,
    split: Split = "grapheme",
) -> Segmentation:
    """Segment ``text`` as a carrier bills it.

    ``smart_encoding`` replaces Unicode look-alikes (`smart.LOOK_ALIKES`) when that makes the
    message GSM-7 without costing more parts. ``language`` ("tr", "es", "pt") allows the national
    language shift tables. ``split="grapheme"`` never splits a user-perceived character;
    ``"code_point"`` keeps only escape and surrogate pairs whole (strict TS 23.040).

    Raises TypeError for a non-str, InvalidTextError (a ValueError) for a lone surrogate and
    SegmentOptionError (a ValueError) for an unknown language or split mode.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if split == "grapheme":
        grapheme = True
    elif split == "code_point":
        grapheme = False
    else:
        raise SegmentOptionError(f"split must be one of {', '.join(SPLITS)}, not {split!r}.")
    if language is None:
        choices = CHOICES[None]
    elif language in LANGUAGES:
        choices = CHOICES[language]
    else:
        raise SegmentOptionError(
            f"language must be one of {', '.join(LANGUAGES)} or omitted, not {language!r}."
        )
    if smart_encoding:
        return _smart(text, choices, language, grapheme)
    return _segment(text, choices, language, grapheme, ())


def _smart(
    text: str, choices: tuple[Charset, ...], language: Language | None, grapheme: bool
) -> Segmentation:
    plain = _segment(text, choices, language, grapheme, ())
    if plain.encoding == "GSM-7":
        return plain
    candidate, replacements = smart.replace(text)
    if not replacements:
        return plain
    replaced = _segment(candidate, choices, language, grapheme, replacements)
    if replaced.encoding == "GSM-7" and replaced.segments <= plain.segments:
        return replaced
    return plain


def _segment(
    text: str,
    choices: tuple[Charset, ...],
    language: Language | None,
    grapheme: bool,
    replacements: Replacements,
) -> Segmentation:
    if DEFAULT.not_basic.search(text) is None:
        # The common case: every character is one septet of the default alphabet.
        units = len(text)
        if units <= DEFAULT.single_capacity:
            room = DEFAULT.single_capacity
            return _make("GSM-7", units, (text,), (), text, replacements, room - units, room)
        return _gsm(text, text, DEFAULT, grapheme, replacements)
    best: Segmentation | None = None
    best_cost = (0, 0, 0)
    for charset in choices:
        if charset.outside.search(text) is None:
            found = _gsm(text, text.translate(charset.escapes), charset, grapheme, replacements)
            if best is None or _cost(found, charset) < best_cost:
                best, best_cost = found, _cost(found, charset)
    if best is not None:
        return best
    return _ucs2(text, choices, language, grapheme, replacements)


def _cost(found: Segmentation, charset: Charset) -> tuple[int, int, int]:
    # Fewest parts, then the smallest header, then the fewest septets.
    return (found.segments, charset.shift_ies, found.units)


def _gsm(
    text: str, septets: str, charset: Charset, grapheme: bool, replacements: Replacements
) -> Segmentation:
    """GSM-7 parts; ``septets`` is ``text`` with each escaped character written ESC + char."""
    units = len(septets)
    lock, single = charset.locking, charset.single
    if units <= charset.single_capacity:
        room = charset.single_capacity
        left = room - units
        return _make("GSM-7", units, (text,), (), text, replacements, left, room, lock, single)
    capacity = charset.multi_capacity
    escaped = units != len(text)
    parts: list[str] = []
    start = 0
    while units - start > capacity:
        end = start + capacity
        last = septets[end - 1]
        if last == ESC:
            end -= 1  # never split an escape pair
        elif grapheme and last == "\r" and septets[end] == "\n":
            end -= 1  # CR LF is one grapheme cluster
        chunk = septets[start:end]
        parts.append(chunk.replace(ESC, "") if escaped else chunk)
        start = end
    chunk = septets[start:]
    parts.append(chunk.replace(ESC, "") if escaped else chunk)
    remaining = capacity - (units - start)
    return _make(
        "GSM-7", units, tuple(parts), (), text, replacements, remaining, capacity, lock, single
    )


def _ucs2(
    text: str,
    choices: tuple[Charset, ...],
    language: Language | None,
    grapheme: bool,
    replacements: Replacements,
) -> Segmentation:
    try:
        data = text.encode("utf-16-le")
    except UnicodeEncodeError as exc:
        raise InvalidTextError(
            f"The text holds a lone surrogate (U+{ord(text[exc.start]):04X} at character "
            f"{exc.start}), which is not valid Unicode: send both halves of the pair, or "
            "remove it.",
            position=exc.start,
        ) from None
    units = len(data) >> 1
    found = OUTSIDE_ALL[language].findall(text) or choices[0].outside.findall(text)
    non_gsm = tuple(dict.fromkeys(found))
    if units <= UCS2_SINGLE_UNITS:
        remaining = UCS2_SINGLE_UNITS - units
        return _make(
            "UCS-2", units, (text,), non_gsm, text, replacements, remaining, UCS2_SINGLE_UNITS
        )
    if grapheme and _JOINER.search(text) is not None:
        parts, last = _by_cluster(text, UCS2_MULTI_UNITS)
    else:
        parts, last = _by_code_unit(data, UCS2_MULTI_UNITS)
    remaining = UCS2_MULTI_UNITS - last
    return _make(
        "UCS-2", units, tuple(parts), non_gsm, text, replacements, remaining, UCS2_MULTI_UNITS
    )


def _by_code_unit(data: bytes, capacity: int) -> tuple[list[str], int]:
    """Greedy UTF-16 parts of ``capacity`` code units, never ending on a high surrogate."""
    size = capacity * 2
    parts: list[str] = []
    start = 0
    while len(data) - start > size:
        end = start + size
        if 0xD8 <= data[end - 1] <= 0xDB:  # high byte of a little-endian high surrogate
            end -= 2
        parts.append(data[start:end].decode("utf-16-le"))
        start = end
    parts.append(data[start:].decode("utf-16-le"))
    return parts, (len(data) - start) >> 1


def _by_cluster(text: str, capacity: int) -> tuple[list[str], int]:
    """Greedy parts that keep grapheme clusters whole; an over-long cluster splits by code point."""
    astral = _ASTRAL.search(text) is not None
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for cluster in _CLUSTER.findall(text):
        size = len(cluster.encode("utf-16-le")) >> 1 if astral else len(cluster)
        if used + size <= capacity:
            current.append(cluster)
            used += size
        elif size <= capacity:
            parts.append("".join(current))
            current = [cluster]
            used = size
        else:
            for char in cluster:
                width = 2 if char > "\uffff" else 1
                if used + width > capacity:
                    parts.append("".join(current))
                    current = []
                    used = 0
                current.append(char)
                used += width
    parts.append("".join(current))
    return parts, used
