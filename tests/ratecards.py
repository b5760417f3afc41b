"""Test helper: a copy of a shipped rate card in a temporary directory, with edits."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from talktime.rating import shipped_card_dir

SHIPPED = "2026.12.1"
"""The shipped cards' version in force (effective 2026-12-01): call legs at the exact rate."""
FIRST_SHIPPED = "2026.11.1"
"""The shipped cards' first version (effective 2026-11-01): each call leg rounded up to the cent."""


def shipped_on(day: dt.date) -> str:
    """The shipped version in force on ``day`` by the effective dates (tests that look at
    yesterday or last month run on any date)."""
    return SHIPPED if day >= dt.date(2026, 12, 1) else FIRST_SHIPPED


def copy_card(
    target: Path,
    name: str = "default",
    *,
    header: dict[str, str] | None = None,
    append: dict[str, str] | None = None,
    replace: dict[str, tuple[str, str]] | None = None,
) -> Path:
    """Copy shipped card `name` (its version in force, `SHIPPED`) to `target`; `header`
    replaces `key = value` lines of card.toml, `append` adds lines to a file, `replace` swaps
    text in a file."""
    shutil.copytree(shipped_card_dir(name), target)
    toml = target / "card.toml"
    text = toml.read_text()
    for key, value in (header or {}).items():
        lines = text.splitlines()
        hits = [i for i, line in enumerate(lines) if line.split("=")[0].strip() == key]
        assert hits, key
        lines[hits[0]] = f"{key} = {value}"
        text = "\n".join(lines) + "\n"
    toml.write_text(text)
    for file, (old, new) in (replace or {}).items():
        content = (target / file).read_text()
        assert old in content, (file, old)
        (target / file).write_text(content.replace(old, new, 1))
    for file, lines_text in (append or {}).items():
        with (target / file).open("a") as out:
            out.write(lines_text)
    return target
