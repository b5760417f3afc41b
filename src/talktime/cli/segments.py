"""`talktime segments`: how a message splits into SMS parts, and what smart encoding would save."""

from __future__ import annotations

import unicodedata
from typing import Annotated, cast

import typer
from rich.table import Table
from rich.text import Text

from talktime.cli.app import app, cli_text, console, fail, print_json, read_stdin
from talktime.errors import TalktimeError
from talktime.sms import Language, Segmentation, Split, segment

LANGUAGE_NAMES = {"tr": "Turkish", "es": "Spanish", "pt": "Portuguese"}
FORCING = "bold white on red"


def _show(char: str) -> str:
    """A character as a reader can see it: itself if printable, else its code point."""
    if char.isprintable() and not char.isspace():
        return char
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name.lower()}" if name else "")


def _highlight(text: str, forcing: set[str]) -> Text:
    """``text`` with each character that forced UCS-2 highlighted, newlines shown as ⏎."""
    out = Text()
    for char in text:
        if char in forcing:
            out.append(char if char.isprintable() else _show(char), style=FORCING)
        elif char == "\n":
            out.append("⏎\n", style="dim")
        elif char == "\r":
            out.append("␍", style="dim")
        else:
            out.append(char)
    return out


def _replacements(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{_show(old)} with {_show(new) if new else 'nothing'}" for old, new in pairs)


def _segments_word(n: int) -> str:
    return f"{n} segment{'s' if n != 1 else ''}"


def render(s: Segmentation, plain: Segmentation | None, smart: Segmentation | None) -> None:
    """Print the human view: summary, parts, forcing characters and the smart-encoding advice."""
    unit = "septets" if s.encoding == "GSM-7" else "UTF-16 units"
    console.print(
        f"[bold]{s.encoding}[/] · [bold]{_segments_word(s.segments)}[/] · {s.units} {unit} "
        f"({s.part_capacity} per part, {s.remaining} left in the last)",
        highlight=False,
    )
    shifts = [
        f"{LANGUAGE_NAMES[lang]} {kind} shift table"
        for lang, kind in ((s.locking_shift, "locking"), (s.single_shift, "single"))
        if lang
    ]
    if shifts:
        console.print("uses the " + " and the ".join(shifts), highlight=False)
    forcing = set(s.non_gsm)
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("part", justify="right")
    table.add_column(unit, justify="right")
    table.add_column("text", overflow="fold")
    for number, (part, size) in enumerate(zip(s.parts, s.part_units, strict=True), 1):
        table.add_row(str(number), str(size), _highlight(part, forcing))
    console.print(table)
    if s.non_gsm:
        listed = ", ".join(_show(c) for c in s.non_gsm)
        console.print(Text.assemble("forced UCS-2 by: ", (listed, FORCING)))
    if s.replacements and plain is not None:
        saved = plain.segments - s.segments
        console.print(
            f"smart encoding replaced {_replacements(s.replacements)}"
            + (f": saves {_segments_word(saved)}" if saved else ""),
            highlight=False,
        )
    elif smart is not None and smart.segments < s.segments:
        saved = s.segments - smart.segments
        console.print(
            f"[yellow]replacing {_replacements(smart.replacements)} saves "
            f"{_segments_word(saved)}[/] (use --smart)",
            highlight=False,
        )


@app.command("segments")
def segments_command(
    text: Annotated[
        str | None, typer.Argument(help="The message; read from stdin when omitted.")
    ] = None,
    smart: Annotated[
        bool, typer.Option("--smart", help="Replace Unicode look-alikes with GSM-7 characters.")
    ] = False,
    language: Annotated[
        str | None,
        typer.Option("--language", help="Allow a national language shift table: tr, es or pt."),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split", help="grapheme (never split a character) or code_point (strict TS 23.040)."
        ),
    ] = "grapheme",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Count the SMS segments of a message: encoding, units, and each part as sent."""
    if text is None:
        text = read_stdin()
        if text.endswith("\n"):  # the newline that ends the input is not part of the message
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
    else:
        text = cli_text(text, "text")
    lang = cast(Language | None, language)  # segment() refuses anything else
    mode = cast(Split, split)
    try:
        s = segment(text, smart_encoding=smart, language=lang, split=mode)
        plain = segment(text, language=lang, split=mode) if s.replacements else None
        better = None
        if not smart and s.encoding == "UCS-2":
            better = segment(text, smart_encoding=True, language=lang, split=mode)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    if as_json:
        print_json(s.to_dict())
        return
    render(s, plain, better)
