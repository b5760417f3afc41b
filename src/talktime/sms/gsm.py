"""The GSM 7-bit alphabets of 3GPP TS 23.038 §6.2.1 and Annex A, as data.

The default alphabet and its extension table, and the national language locking shift (A.3) and
single shift (A.2) tables for Turkish, Spanish and Portuguese. Index = septet value.
"""

from __future__ import annotations

from typing import Final, Literal

Language = Literal["tr", "es", "pt"]
LANGUAGES: Final[tuple[Language, ...]] = ("tr", "es", "pt")

ESC: Final = "\x1b"
"""Septet 0x1B: escape to the extension (single shift) table. Never a character of its own."""

# 6.2.1 GSM 7 bit Default Alphabet; rows of 16 septets, 0x1B is the escape.
DEFAULT_ALPHABET: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# 6.2.1.1 GSM 7 bit default alphabet extension table (each costs ESC + septet).
DEFAULT_EXTENSION: Final[dict[int, str]] = {
    0x0A: "\x0c",  # form feed (page break)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

# A.3.1 Turkish National Language Locking Shift Table.
TURKISH_LOCKING: Final = (
    "@£$¥€éùıòÇ\nĞğ\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bŞşßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "İABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "çabcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# A.3.3 Portuguese National Language Locking Shift Table.
PORTUGUESE_LOCKING: Final = (
    "@£$¥êéúíóç\nÔô\rÁá"
    "Δ_ªÇÀ∞^\\€Ó|\x1bÂâÊÉ"
    " !\"#º%&'()*+,-./"
    "0123456789:;<=>?"
    "ÍABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÃÕÚÜ§"
    "~abcdefghijklmno"
    "pqrstuvwxyzãõ`üà"
)

# A.2.1 Turkish National Language Single Shift Table.
TURKISH_SINGLE: Final[dict[int, str]] = {
    **DEFAULT_EXTENSION,
    0x47: "Ğ",
    0x49: "İ",
    0x53: "Ş",
    0x63: "ç",
    0x67: "ğ",
    0x69: "ı",
    0x73: "ş",
}

# A.2.2 Spanish National Language Single Shift Table (Spanish has no locking shift table).
SPANISH_SINGLE: Final[dict[int, str]] = {
    **DEFAULT_EXTENSION,
    0x09: "ç",
    0x41: "Á",
    0x49: "Í",
    0x4F: "Ó",
    0x55: "Ú",
    0x61: "á",
    0x69: "í",
    0x6F: "ó",
    0x75: "ú",
}

# A.2.3 Portuguese National Language Single Shift Table.
PORTUGUESE_SINGLE: Final[dict[int, str]] = {
    **DEFAULT_EXTENSION,
    0x05: "ê",
    0x09: "ç",
    0x0B: "Ô",
    0x0C: "ô",
    0x0E: "Á",
    0x0F: "á",
    0x12: "Φ",
    0x13: "Γ",
    0x15: "Ω",
    0x16: "Π",
    0x17: "Ψ",
    0x18: "Σ",
    0x19: "Θ",
    0x1F: "Ê",
    0x41: "À",
    0x49: "Í",
    0x4F: "Ó",
    0x55: "Ú",
    0x5B: "Ã",
    0x5C: "Õ",
    0x61: "Â",
    0x69: "í",
    0x6F: "ó",
    0x75: "ú",
    0x7B: "ã",
    0x7C: "õ",
    0x7F: "â",
}

LOCKING_SHIFT: Final[dict[Language, str]] = {"tr": TURKISH_LOCKING, "pt": PORTUGUESE_LOCKING}
SINGLE_SHIFT: Final[dict[Language, dict[int, str]]] = {
    "tr": TURKISH_SINGLE,
    "es": SPANISH_SINGLE,
    "pt": PORTUGUESE_SINGLE,
}
LANGUAGE_IDS: Final[dict[Language, int]] = {"tr": 1, "es": 2, "pt": 3}
"""National Language Identifiers (TS 23.038 §6.2.1.2.4) carried in the shift IEs."""
