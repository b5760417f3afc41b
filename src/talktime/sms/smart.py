"""Smart encoding: the documented table of Unicode look-alikes and their GSM-7 equivalents.

Only typographic look-alikes are replaced (quotes, dashes, ellipsis, odd spaces, bullets, invisible
format characters); letters are never changed. Every key is outside every GSM-7 table.
"""

from __future__ import annotations

import re
from typing import Final

Replacements = tuple[tuple[str, str], ...]

LOOK_ALIKES: Final[dict[str, str]] = {
    # single quotes, apostrophes and primes
    "\u2018": "'",  # ‘ left single quotation mark
    "\u2019": "'",  # ’ right single quotation mark (apostrophe)
    "\u201a": "'",  # ‚ single low-9 quotation mark
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
    "\u2032": "'",  # ′ prime
    "\u2035": "'",  # ‵ reversed prime
    "\u2039": "'",  # ‹ single left-pointing angle quotation mark
    "\u203a": "'",  # › single right-pointing angle quotation mark
    "\u02bc": "'",  # ʼ modifier letter apostrophe
    "\uff07": "'",  # ＇ fullwidth apostrophe
    # double quotes
    "\u201c": '"',  # “ left double quotation mark
    "\u201d": '"',  # ” right double quotation mark
    "\u201e": '"',  # „ double low-9 quotation mark
    "\u201f": '"',  # ‟ double high-reversed-9 quotation mark
    "\u2033": '"',  # ″ double prime
    "\u2036": '"',  # ‶ reversed double prime
    "\u00ab": '"',  # « left-pointing double angle quotation mark
    "\u00bb": '"',  # » right-pointing double angle quotation mark
    "\uff02": '"',  # ＂ fullwidth quotation mark
    # dashes and minus signs
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    "\ufe63": "-",  # ﹣ small hyphen-minus
    "\uff0d": "-",  # － fullwidth hyphen-minus
    # ellipsis
    "\u2026": "...",  # … horizontal ellipsis
    # odd spaces
    "\u0009": " ",  # tab
    "\u00a0": " ",  # no-break space
    "\u1680": " ",  # ogham space mark
    "\u2000": " ",  # en quad
    "\u2001": " ",  # em quad
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2004": " ",  # three-per-em space
    "\u2005": " ",  # four-per-em space
    "\u2006": " ",  # six-per-em space
    "\u2007": " ",  # figure space
    "\u2008": " ",  # punctuation space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    # line and paragraph separators
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    # bullets
    "\u2022": "-",  # • bullet
    "\u2023": "-",  # ‣ triangular bullet
    "\u2043": "-",  # ⁃ hyphen bullet
    "\u2219": "-",  # ∙ bullet operator
    "\u25e6": "-",  # ◦ white bullet
    # slashes and other ASCII look-alikes
    "\u2044": "/",  # ⁄ fraction slash
    "\u2215": "/",  # ∕ division slash
    "\u02c6": "^",  # ˆ modifier letter circumflex accent
    "\u02dc": "~",  # ˜ small tilde
    "\u2024": ".",  # ․ one dot leader
    "\u2025": "..",  # ‥ two dot leader
    # invisible format characters (removed)
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero width no-break space (byte order mark)
}
"""Each look-alike and what smart encoding sends instead."""

_FIND: Final = re.compile("[" + "".join(re.escape(c) for c in LOOK_ALIKES) + "]")
_TABLE: Final = str.maketrans(LOOK_ALIKES)


def replace(text: str) -> tuple[str, Replacements]:
    """``text`` with every look-alike replaced, and the distinct replacements made, in order."""
    found = _FIND.findall(text)
    if not found:
        return text, ()
    return text.translate(_TABLE), tuple((c, LOOK_ALIKES[c]) for c in dict.fromkeys(found))
