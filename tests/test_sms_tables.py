"""The GSM-7 tables against spot values of TS 23.038, and the smart-encoding table's promise."""

from __future__ import annotations

import pytest

from talktime.sms import LOOK_ALIKES
from talktime.sms.charset import CHOICES, septet_capacity
from talktime.sms.gsm import (
    DEFAULT_ALPHABET,
    DEFAULT_EXTENSION,
    LOCKING_SHIFT,
    PORTUGUESE_LOCKING,
    PORTUGUESE_SINGLE,
    SPANISH_SINGLE,
    TURKISH_LOCKING,
    TURKISH_SINGLE,
)


@pytest.mark.parametrize("table", [DEFAULT_ALPHABET, TURKISH_LOCKING, PORTUGUESE_LOCKING])
def test_locking_tables_have_128_septets_with_escape_at_1b(table: str) -> None:
    assert len(table) == 128
    assert table[0x1B] == "\x1b"
    assert len(set(table)) == 128


@pytest.mark.parametrize(
    ("table", "septet", "char"),
    [
        (DEFAULT_ALPHABET, 0x00, "@"),
        (DEFAULT_ALPHABET, 0x09, "Ç"),
        (DEFAULT_ALPHABET, 0x24, "¤"),
        (DEFAULT_ALPHABET, 0x40, "¡"),
        (DEFAULT_ALPHABET, 0x60, "¿"),
        (DEFAULT_ALPHABET, 0x7F, "à"),
        (TURKISH_LOCKING, 0x04, "€"),
        (TURKISH_LOCKING, 0x07, "ı"),
        (TURKISH_LOCKING, 0x0B, "Ğ"),
        (TURKISH_LOCKING, 0x1C, "Ş"),
        (TURKISH_LOCKING, 0x40, "İ"),
        (TURKISH_LOCKING, 0x60, "ç"),
        (PORTUGUESE_LOCKING, 0x12, "ª"),
        (PORTUGUESE_LOCKING, 0x15, "∞"),
        (PORTUGUESE_LOCKING, 0x24, "º"),
        (PORTUGUESE_LOCKING, 0x5D, "Ú"),
        (PORTUGUESE_LOCKING, 0x60, "~"),
        (PORTUGUESE_LOCKING, 0x7D, "`"),
    ],
)
def test_locking_table_septets(table: str, septet: int, char: str) -> None:
    assert table[septet] == char


def test_single_shift_tables() -> None:
    assert set(DEFAULT_EXTENSION.values()) == set("\x0c^{}\\[~]|€")
    assert {k: TURKISH_SINGLE[k] for k in (0x47, 0x49, 0x53, 0x63, 0x67, 0x69, 0x73)} == dict(
        zip((0x47, 0x49, 0x53, 0x63, 0x67, 0x69, 0x73), "ĞİŞçğış", strict=True)
    )
    assert "".join(SPANISH_SINGLE[k] for k in (0x09, 0x41, 0x49, 0x4F, 0x55)) == "çÁÍÓÚ"
    assert "".join(SPANISH_SINGLE[k] for k in (0x61, 0x69, 0x6F, 0x75)) == "áíóú"
    assert "".join(PORTUGUESE_SINGLE[k] for k in (0x05, 0x0B, 0x0C, 0x0E, 0x0F, 0x1F)) == "êÔôÁáÊ"
    assert "".join(PORTUGUESE_SINGLE[k] for k in (0x5B, 0x5C, 0x61, 0x7B, 0x7C, 0x7F)) == "ÃÕÂãõâ"
    for table in (TURKISH_SINGLE, SPANISH_SINGLE, PORTUGUESE_SINGLE):
        assert DEFAULT_EXTENSION.items() <= table.items()
    assert "es" not in LOCKING_SHIFT


def test_udh_capacities() -> None:
    assert septet_capacity(0) == 160
    assert septet_capacity(6) == 153  # concatenation
    assert septet_capacity(1 + 3) == 155  # one shift IE
    assert septet_capacity(1 + 6) == 152  # two shift IEs
    assert septet_capacity(6 + 3) == 149
    assert septet_capacity(6 + 6) == 146
    caps = {(c.locking, c.single): (c.single_capacity, c.multi_capacity) for c in CHOICES["pt"]}
    assert caps == {
        (None, None): (160, 153),
        (None, "pt"): (155, 149),
        ("pt", None): (155, 149),
        ("pt", "pt"): (152, 146),
    }


def test_every_look_alike_is_outside_every_gsm_table() -> None:
    sendable = set().union(*(c.basic | set(c.shifted) for cs in CHOICES.values() for c in cs))
    assert not set(LOOK_ALIKES) & sendable
    assert all(set(v) <= sendable for v in LOOK_ALIKES.values())


def test_characters_the_quick_test_calls_plain_never_join_a_cluster() -> None:
    from talktime.sms.segmenter import _JOINER, _plain

    plain = "".join(chr(c) for c in range(0x20000) if not 0xD800 <= c <= 0xDFFF and _plain(chr(c)))
    assert len(plain) > 40_000
    assert _JOINER.findall(plain) == []
