"""The PDF statement never prints one amount over another: its amount columns grow with the
widest amount (and the font shrinks only when the labels would not fit beside them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import sqlalchemy as sa

from talktime import money
from talktime.ops import pdf
from talktime.ops.statements import statement
from talktime.wallet import Wallet

SEPT = datetime(2026, 9, 1, tzinfo=UTC)


def text_boxes(data: bytes) -> list[tuple[float, float, float, float]]:
    """(left, bottom, right, top) of every text object on the PDF's one page."""
    document = pdfium.PdfDocument(data)
    try:
        assert len(document) == 1
        page = document[0]
        width = page.get_width()
        boxes = [o.get_bounds() for o in page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_TEXT])]
        assert all(left >= 0 and right <= width for left, _, right, _ in boxes)
        page.close()
        return boxes
    finally:
        document.close()


def overlapping(boxes: list[tuple[float, float, float, float]]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    ]


def test_large_amounts_in_the_pdf_statement_never_overlap(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("none", 0, now=SEPT)
    account = wallet.create_account("Whale", "none", "create", now=SEPT).account.id
    for n in range(4):  # 18446744073709.551616 of purchased credit: 21 characters
        wallet.grant(account, "purchased", 2**62, f"buy-{n}", now=SEPT)
    wallet.grant(account, "promotional", 2**62, "promo", now=SEPT)
    wallet.charge(account, 8_550, "sms", reference="msg_1", now=SEPT + timedelta(days=1))
    stmt = statement(engine, account, "2026-09")
    data = pdf.render(stmt)
    assert overlapping(text_boxes(data)) == []
    document = pdfium.PdfDocument(data)
    text = document[0].get_textpage().get_text_range()
    document.close()
    assert money.format(stmt.closing_free + stmt.closing_paid, 2) in text


def test_an_ordinary_pdf_statement_keeps_its_layout(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", 10 * money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme", "starter", "create", now=SEPT).account.id
    wallet.grant(account, "purchased", 25 * money.DOLLAR, "buy", now=SEPT)
    wallet.charge(account, 8_550, "sms", reference="msg_1", now=SEPT + timedelta(days=1))
    stmt = statement(engine, account, "2026-09")
    boxes = text_boxes(pdf.render(stmt))
    assert overlapping(boxes) == []
    size, widths = pdf._columns(pdf.FPDF(format="A4"), stmt)
    assert size == 10
    assert widths[1:] == (32, 32, 32)
