"""Split a message into SMS parts exactly as a carrier bills it (3GPP TS 23.038 and 23.040).

GSM-7 when every character is in a GSM-7 table (national language shift tables on request),
otherwise UCS-2; parts filled greedily, never splitting an escape pair, a surrogate pair or (by
default) a user-perceived character. Pure: no I/O, nothing cached that grows.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, Literal

import regex

from talktime.sms import smart
from talktime.sms.charset import (
    CHOICES,
    DEFAULT,
    SENDABLE_RUNS,
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
# A boundary between two code points neither of which is one of these is always a grapheme
# cluster boundary (UAX #29: only rules GB3, GB6-GB9c and GB11-GB13 join, and each involves one).
_JOINER: Final = regex.compile(
    r"[\r\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=SpacingMark}\p{GCB=Prepend}"
    r"\p{GCB=Regional_Indicator}\p{GCB=L}\p{GCB=V}\p{GCB=T}]"
)


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
    language: Language | None = None
    """The national language whose shift tables were allowed (the `language` option)."""

    @cached_property
    def non_gsm(self) -> tuple[str, ...]:
        """Distinct characters that forced UCS-2, in order of first appearance.

        Computed on first access (billing never needs it). When every character is in some
        table but no table combination holds them all, the characters outside the default
        alphabet.
        """
        if self.encoding == "GSM-7":
            return ()
        text = self.text
        outside = SENDABLE_RUNS[self.language].sub("", text) or SENDABLE_RUNS[None].sub("", text)
        return tuple(dict.fromkeys(outside))

    @cached_property
    def part_units(self) -> tuple[int, ...]:
        """Units of each part (computed on first access)."""
        if self.encoding == "UCS-2":
            return tuple(len(part.encode("utf-16-le")) >> 1 for part in self.parts)
        charset = next(
            c
            for c in CHOICES[self.language]
            if (c.locking, c.single) == (self.locking_shift, self.single_shift)
        )
        return tuple(charset.units(part) or 0 for part in self.parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data with every field."""
        return {
            "encoding": self.encoding,
            "segments": self.segments,
            "units": self.units,
            "parts": list(self.parts),
            "part_units": list(self.part_units),
            "non_gsm": list(self.non_gsm),
            "text": self.text,
            "replacements": [list(pair) for pair in self.replacements],
            "remaining": self.remaining,
            "part_capacity": self.part_capacity,
            "locking_shift": self.locking_shift,
            "single_shift": self.single_shift,
            "language": self.language,
        }


_new = object.__new__
_decode: Final = codecs.utf_16_le_decode  # direct codec functions skip the codec lookup
_encode: Final = codecs.utf_16_le_encode
_set = object.__setattr__
_basic_prefix = DEFAULT.all_basic.match
_sendable = DEFAULT.all_sendable.fullmatch
_SHIFTED = DEFAULT.shifted_set
_ASCII_NOT_BASIC: Final = bytes(c for c in range(128) if chr(c) not in DEFAULT.basic)
_SINGLE = DEFAULT.single_capacity


def _make(
    encoding: Encoding,
    units: int,
    parts: tuple[str, ...],
    language: Language | None,
    text: str,
    replacements: Replacements,
    remaining: int,
    part_capacity: int,
    locking_shift: Language | None = None,
    single_shift: Language | None = None,
) -> Segmentation:
    # The hot path: gives the frozen instance its __dict__ at once (a quarter of __init__'s cost).
    result: Segmentation = _new(Segmentation)
    _set(
        result,
        "__dict__",
        {
            "encoding": encoding,
            "segments": len(parts),
            "units": units,
            "parts": parts,
            "text": text,
            "replacements": replacements,
            "remaining": remaining,
            "part_capacity": part_capacity,
            "locking_shift": locking_shift,
            "single_shift": single_shift,
            "language": language,
        },
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
    if language is not None or smart_encoding:
        if language is not None and language not in LANGUAGES:
            raise SegmentOptionError(
                f"language must be one of {', '.join(LANGUAGES)} or omitted, not {language!r}."
            )
        choices = CHOICES[language]
        if smart_encoding:
            return _smart(text, choices, language, grapheme)
        return _segment(text, choices, language, grapheme, ())
    # The hot path, inlined: the default alphabet or UCS-2.
    size = len(text)
    if text.isascii() and len(text.encode().translate(None, _ASCII_NOT_BASIC)) == size:
        first = size  # plain ASCII: the bytes check is the fastest
    else:
        first = _basic_prefix(text).end()  # type: ignore[union-attr]  # "[...]*" always matches
    if first == size:  # every character one septet of the default alphabet
        if size <= _SINGLE:
            return _make("GSM-7", size, (text,), None, text, (), _SINGLE - size, _SINGLE)
        return _gsm(text, size, DEFAULT, None, grapheme, ())
    if text[first] in _SHIFTED and _sendable(text, first) is not None:
        units = size + DEFAULT.escapes(text, first)
        if units <= _SINGLE:
            return _make("GSM-7", units, (text,), None, text, (), _SINGLE - units, _SINGLE)
        return _gsm(text, units, DEFAULT, None, grapheme, ())
    return _ucs2(text, None, grapheme, ())


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
    if len(choices) == 1:  # no language: the default alphabet or UCS-2
        units = DEFAULT.units(text)
        if units is None:
            return _ucs2(text, language, grapheme, replacements)
        return _gsm(text, units, DEFAULT, language, grapheme, replacements)
    best: Segmentation | None = None
    best_cost = (0, 0, 0)
    for charset in choices:
        units = charset.units(text)
        if units is not None:
            found = _gsm(text, units, charset, language, grapheme, replacements)
            if units == len(text) and charset is DEFAULT:
                return found  # all basic without a header: no other charset does better
            if best is None or _cost(found, charset) < best_cost:
                best, best_cost = found, _cost(found, charset)
    if best is not None:
        return best
    return _ucs2(text, language, grapheme, replacements)


def _cost(found: Segmentation, charset: Charset) -> tuple[int, int, int]:
    # Fewest parts, then the smallest header, then the fewest septets.
    return (found.segments, charset.shift_ies, found.units)


def _gsm(
    text: str,
    units: int,
    charset: Charset,
    language: Language | None,
    grapheme: bool,
    replacements: Replacements,
) -> Segmentation:
    """GSM-7 parts of ``text``, which costs ``units`` septets in ``charset``."""
    lock, single = charset.locking, charset.single
    if units <= charset.single_capacity:
        room = charset.single_capacity
        left = room - units
        whole = (text,)
        return _make("GSM-7", units, whole, language, text, replacements, left, room, lock, single)
    capacity = charset.multi_capacity
    escaped = units != len(text)
    if not escaped and (not grapheme or "\r" not in text):
        # One septet per character and nothing to keep together: cut every `capacity`.
        cut = tuple([text[i : i + capacity] for i in range(0, units, capacity)])
        left = capacity - len(cut[-1])
        return _make(
            "GSM-7", units, cut, language, text, replacements, left, capacity, lock, single
        )
    # One character per septet: each shifted character is written ESC + character.
    septets = charset.septets(text) if escaped else text
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
    left = capacity - (units - start)
    cut = tuple(parts)
    return _make("GSM-7", units, cut, language, text, replacements, left, capacity, lock, single)


def _ucs2(
    text: str, language: Language | None, grapheme: bool, replacements: Replacements
) -> Segmentation:
    try:
        data = _encode(text)[0]
    except UnicodeEncodeError as exc:
        raise _lone_surrogate(text, exc.start) from None
    units = len(data) >> 1
    if units <= UCS2_SINGLE_UNITS:
        room = UCS2_SINGLE_UNITS
        return _make("UCS-2", units, (text,), language, text, replacements, room - units, room)
    parts, last = _ucs2_parts(text, data, UCS2_MULTI_UNITS, grapheme)
    room = UCS2_MULTI_UNITS
    return _make("UCS-2", units, tuple(parts), language, text, replacements, room - last, room)


def _lone_surrogate(text: str, position: int) -> InvalidTextError:
    return InvalidTextError(
        f"The text holds a lone surrogate (U+{ord(text[position]):04X} at character "
        f"{position}), which is not valid Unicode: send both halves of the pair, or remove it.",
        position=position,
    )


def require_valid_text(text: str) -> None:
    """Raise InvalidTextError (with its position) when ``text`` holds a lone surrogate, as
    `segment` does for such a text; a caller checks it before anything else reads the text."""
    if text.isascii():
        return
    try:
        _encode(text)
    except UnicodeEncodeError as exc:
        raise _lone_surrogate(text, exc.start) from None


def _plain_pair(pair: str) -> bool:
    """True when a cut between the two characters of ``pair`` is a grapheme cluster boundary."""
    if pair.isascii():
        return pair[0] != "\r"
    return (_plain(pair[0]) and _plain(pair[1])) or _JOINER.search(pair) is None


def _plain(char: str) -> bool:
    """A quick sure test that ``char`` is no joiner (Latin, kana, CJK, Hangul, most emoji)."""
    if char < "\u0300":
        return char != "\r"
    return (
        "\u3040" <= char <= "\u3098"
        or "\u309b" <= char <= "\u9fff"
        or "\uac00" <= char <= "\ud7a3"
        or "\U0001f300" <= char <= "\U0001f3fa"
        or "\U0001f400" <= char <= "\U0001faff"
    )


def _ucs2_parts(text: str, data: bytes, capacity: int, grapheme: bool) -> tuple[list[str], int]:
    """Greedy parts of ``capacity`` UTF-16 units (``data`` is ``text`` in UTF-16-LE).

    A part never ends on a high surrogate; in grapheme mode it ends at the last cluster boundary
    that fits, unless the cluster across the cut is longer than a part (then by code point).
    Returns the parts and the units of the last one.
    """
    total = len(data) >> 1
    bmp = total == len(text)  # no surrogate pairs: code points are code units
    if bmp and (
        not grapheme
        or all(_plain_pair(text[i - 1 : i + 1]) for i in range(capacity, total, capacity))
    ):
        # Every cut every `capacity` units falls between two characters that never join.
        starts = range(0, total, capacity)
        return [text[i : i + capacity] for i in starts], total - starts[-1]
    parts: list[str] = []
    start = 0  # in UTF-16 units
    first = 0  # in code points
    floor = 0  # a code point index known to be a cluster boundary
    inside = 0  # end of a cluster longer than a part that the last cut fell inside
    while total - start > capacity:
        end = start + capacity
        if bmp:
            chunk = text[start:end]
        else:
            if 0xD8 <= data[2 * end - 1] <= 0xDB:  # high byte of a little-endian high surrogate
                end -= 1
            chunk = _decode(data[2 * start : 2 * end])[0]
        after = first + len(chunk)
        if grapheme and after >= inside and not _plain_pair(text[after - 1 : after + 1]):
            cut, longer = _cluster_cut(text, after, capacity, max(floor, inside))
            if longer:
                inside = longer  # cut by code point until this cluster ends
            else:
                floor = cut
                if cut != after:
                    chunk = text[first:cut]
                    end = start + (len(chunk.encode("utf-16-le")) >> 1)
                    after = cut
        elif after >= inside:
            floor = after
        parts.append(chunk)
        start, first = end, after
    parts.append(text[first:])
    return parts, total - start


def _cluster_cut(text: str, cut: int, capacity: int, floor: int) -> tuple[int, int]:
    """Where a part that would end at code point ``cut`` ends so that no cluster is split.

    ``floor`` is a known cluster boundary before ``cut``, so the work is bounded by one part.
    Returns the cut and, when the cluster across it is longer than a part (cut by code point),
    where that cluster ends (else 0).
    """
    # Step back to a position that is surely a cluster boundary (no joiner on either side).
    safe = cut - 1
    while safe > floor and _JOINER.search(text, safe - 1, safe + 1) is not None:
        safe -= 1
    # Clusters are found in a window that starts at that boundary: `\X` searched from a position
    # of the whole text counts every regional indicator before it (GB12/GB13 parity), which made
    # a long run of flags quadratic. A cluster across the cut that fits in a part ends inside
    # the window; one cut off by the window's end is longer than a part either way.
    window = text[safe : cut + capacity + 1]
    for cluster in _CLUSTER.finditer(window):
        end = safe + cluster.end()
        if end > cut:
            begin = safe + cluster.start()
            if begin >= cut:
                return cut, 0  # already a boundary
            if len(cluster.group().encode("utf-16-le")) >> 1 > capacity:
                whole = _CLUSTER.match(text[begin:])  # longer than a part: where it ends
                return cut, begin + whole.end()  # type: ignore[union-attr]  # \X matches
            return begin, 0
    return cut, 0
