"""The GSM-7 character sets a message can be sent in, with septet costs and part capacities.

A charset is one choice of locking shift table (basic characters, 1 septet) and single shift table
(ESC + septet, 2 septets), plus what its shift indicators cost in the user data header (TS 23.040
§9.2.3.24: UDHL 1 octet, concatenation IE 5 octets, each national language shift IE 3 octets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from talktime.sms.gsm import (
    DEFAULT_ALPHABET,
    DEFAULT_EXTENSION,
    ESC,
    LOCKING_SHIFT,
    SINGLE_SHIFT,
    Language,
)

USER_DATA_OCTETS: Final = 140
UDH_LENGTH_OCTETS: Final = 1
CONCATENATION_IE_OCTETS: Final = 5
SHIFT_IE_OCTETS: Final = 3
UCS2_SINGLE_UNITS: Final = USER_DATA_OCTETS // 2  # 70
UCS2_MULTI_UNITS: Final = (
    USER_DATA_OCTETS - UDH_LENGTH_OCTETS - CONCATENATION_IE_OCTETS
) // 2  # 67


def septet_capacity(udh_octets: int) -> int:
    """Septets of text that fit in one part after a UDH of ``udh_octets`` (fill bits included)."""
    return (USER_DATA_OCTETS - udh_octets) * 8 // 7


def _class(chars: set[str], suffix: str) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]" + suffix)


@dataclass(frozen=True, eq=False)
class Charset:
    """One GSM-7 table combination: what each character costs and how much a part holds."""

    locking: Language | None
    single: Language | None
    basic: frozenset[str]
    """Characters of the locking shift table: 1 septet each."""
    shifted: tuple[str, ...]
    """Characters of the single shift table that are not basic: ESC + septet, 2 septets each."""
    single_capacity: int
    multi_capacity: int
    all_basic: re.Pattern[str]
    """`fullmatch` succeeds when every character is basic."""

    all_sendable: re.Pattern[str]
    """`fullmatch` succeeds when every character is basic or shifted."""
    shifted_set: frozenset[str]

    @property
    def shift_ies(self) -> int:
        """How many national language shift IEs the header carries (0, 1 or 2)."""
        return (self.locking is not None) + (self.single is not None)

    def escapes(self, text: str, start: int = 0) -> int:
        """How many characters of ``text[start:]`` are shifted (cost an extra ESC septet)."""
        count = 0
        for char in self.shifted:
            if char in text:
                count += text.count(char, start)
        return count

    def units(self, text: str) -> int | None:
        """Septets ``text`` costs in this charset, or None when a character is not in it."""
        first = self.all_basic.match(text).end()  # type: ignore[union-attr]  # "[...]*" matches
        if first == len(text):
            return first
        if text[first] not in self.shifted_set or self.all_sendable.fullmatch(text, first) is None:
            return None
        return len(text) + self.escapes(text, first)

    def septets(self, text: str) -> str:
        """``text`` with each shifted character written as ESC + character: one char a septet."""
        for char in self.shifted:
            if char in text:
                text = text.replace(char, ESC + char)
        return text

    @classmethod
    def build(cls, locking: Language | None, single: Language | None) -> Charset:
        """The charset for a locking / single shift table pair (None: the default table)."""
        table = DEFAULT_ALPHABET if locking is None else LOCKING_SHIFT[locking]
        extension = DEFAULT_EXTENSION if single is None else SINGLE_SHIFT[single]
        basic = set(table) - {ESC}
        shifted = set(extension.values()) - basic
        ies = (locking is not None) + (single is not None)
        shift_octets = ies * SHIFT_IE_OCTETS
        single_udh = UDH_LENGTH_OCTETS + shift_octets if ies else 0
        multi_udh = UDH_LENGTH_OCTETS + CONCATENATION_IE_OCTETS + shift_octets
        return cls(
            locking=locking,
            single=single,
            basic=frozenset(basic),
            shifted=tuple(sorted(shifted)),
            single_capacity=septet_capacity(single_udh),
            multi_capacity=septet_capacity(multi_udh),
            all_basic=_class(basic, "*"),
            all_sendable=_class(basic | shifted, "*"),
            shifted_set=frozenset(shifted),
        )


DEFAULT: Final = Charset.build(None, None)


def _choices(language: Language | None) -> tuple[Charset, ...]:
    if language is None:
        return (DEFAULT,)
    lockings: list[Language | None] = [None]
    if language in LOCKING_SHIFT:
        lockings.append(language)
    # Cheapest header first: no shift, single shift only, locking shift only, both.
    pairs = [(lock, single) for lock in lockings for single in (None, language)]
    pairs.sort(key=lambda pair: (pair[0] is not None) + (pair[1] is not None))
    return tuple(DEFAULT if pair == (None, None) else Charset.build(*pair) for pair in pairs)


CHOICES: Final[dict[Language | None, tuple[Charset, ...]]] = {
    language: _choices(language) for language in (None, "tr", "es", "pt")
}
"""For each language option, the charsets a message may use, cheapest header first."""

SENDABLE_RUNS: Final[dict[Language | None, re.Pattern[str]]] = {
    language: _class(set().union(*(c.basic | set(c.shifted) for c in choices)), "+")
    for language, choices in CHOICES.items()
}
"""Matches a run of characters that some charset of the language option can send."""
