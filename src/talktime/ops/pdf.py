"""A statement as a one-page PDF a person reads (fpdf2, core Helvetica font, no I/O)."""

from __future__ import annotations

import unicodedata

from fpdf import FPDF
from fpdf.enums import WrapMode

from talktime import money
from talktime.ops.clock import iso
from talktime.ops.statements import Statement

SECTION_TITLES = {
    "credit": "Credit granted and bought",
    "usage": "Usage",
    "expiry": "Expiries",
    "refund": "Refunds",
}


_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u0141": "L",
        "\u0142": "l",
        "\u0110": "D",
        "\u0111": "d",
        "\u0152": "OE",
        "\u0153": "oe",
        "\u00a0": " ",
    }
)


def _ascii(text: str) -> str:
    """Core PDF fonts are Latin-1: keep what they show, spell typographic punctuation and
    letters with marks by their plain forms (`Łódź` -> `Lodz`), and only then write `?`."""
    out = []
    for char in text.translate(_PUNCTUATION):
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


def _figures(stmt: Statement) -> list[int]:
    """Every amount the table shows."""
    pairs = [(stmt.opening_free, stmt.opening_paid), (stmt.closing_free, stmt.closing_paid)]
    pairs += [(line.free, line.paid) for line in stmt.lines]
    return [x for free, paid in pairs for x in (free, paid, free + paid)]


def _columns(pdf: FPDF, stmt: Statement) -> tuple[float, tuple[float, float, float, float]]:
    """The table's font size and column widths (mm): amount columns wide enough for the
    widest amount in bold, so no amount runs into its neighbour; the font shrinks from 10 pt
    only when the labels would not fit beside them."""
    texts = [money.format(x, 2) for x in _figures(stmt)]
    labels = ["Opening balance", "Closing balance"]
    labels += [_ascii(f"  {line.label} ({line.entries})") for line in stmt.lines]
    size = 10.0
    while True:
        pdf.set_font("Helvetica", "B", size)
        need = max(pdf.get_string_width(t) for t in texts) + 2 * pdf.c_margin
        amount = max(32.0, need)
        label = pdf.epw - 3 * amount
        room = max(pdf.get_string_width(t) for t in labels) + 2 * pdf.c_margin
        if label >= room or size <= 4:
            return size, (label, amount, amount, amount)
        size -= 0.5


def render(stmt: Statement) -> bytes:
    """The statement as PDF bytes: header, opening balance, lines by section, closing balance."""
    pdf = FPDF(format="A4")
    pdf.set_title(_ascii(f"talktime statement {stmt.period}"))
    pdf.set_author("talktime")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _ascii(f"Statement {stmt.period}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    # multi_cell wraps a long account name inside the page instead of running off its edge
    pdf.multi_cell(
        0,
        6,
        _ascii(f"Account {stmt.account_id} - {stmt.account_name} ({stmt.currency})"),
        new_x="LMARGIN",
        new_y="NEXT",
        wrapmode=WrapMode.CHAR,
    )
    pdf.cell(
        0, 6, f"From {iso(stmt.start)} to {iso(stmt.end)} (UTC)", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(4)
    size, widths = _columns(pdf, stmt)

    def row(label: str, free: int, paid: int, bold: bool = False) -> None:
        pdf.set_font("Helvetica", "B" if bold else "", size)
        cells = (label, money.format(free, 2), money.format(paid, 2), money.format(free + paid, 2))
        for i, (text, width) in enumerate(zip(cells, widths, strict=True)):
            pdf.cell(
                width,
                7,
                _ascii(text),
                border="B",
                align="L" if i == 0 else "R",
                new_x="RIGHT" if i < 3 else "LMARGIN",
                new_y="TOP" if i < 3 else "NEXT",
            )

    pdf.set_font("Helvetica", "B", size)
    for i, (head, width) in enumerate(zip(("", "Free", "Paid", "Total"), widths, strict=True)):
        pdf.cell(
            width,
            7,
            head,
            align="L" if i == 0 else "R",
            new_x="RIGHT" if i < 3 else "LMARGIN",
            new_y="TOP" if i < 3 else "NEXT",
        )
    row("Opening balance", stmt.opening_free, stmt.opening_paid, bold=True)
    for section, title in SECTION_TITLES.items():
        lines = [line for line in stmt.lines if line.section == section]
        if not lines:
            continue
        pdf.ln(2)
        pdf.set_font("Helvetica", "I", 10)
        pdf.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        for line in lines:
            row(f"  {line.label} ({line.entries})", line.free, line.paid)
    pdf.ln(2)
    row("Closing balance", stmt.closing_free, stmt.closing_paid, bold=True)
    if stmt.uncollected:
        pdf.ln(4)
        pdf.set_font("Helvetica", "", 9)
        pdf.cell(
            0,
            6,
            f"Uncollected usage (not covered by credit): {money.format(stmt.uncollected, 2)}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(
        0,
        4,
        "Amounts are exact: a price finer than a cent keeps its extra decimals. The lines add "
        "up exactly to the ledger.",
    )
    return bytes(pdf.output())
