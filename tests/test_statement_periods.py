"""Statement periods are ASCII `YYYY-MM`: digits of other scripts (`２０２６-11`, `٢٠٢٦-11`) and a
trailing newline are a 422 `invalid_period` over the API in every format and a clean CLI error,
never a 500 or a traceback; and no text can crash the PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pypdfium2 as pdfium
import pytest
from typer.testing import CliRunner

from talktime.cli import app
from talktime.ops import pdf
from talktime.ops.statements import InvalidPeriodError, Line, Statement, period_bounds

from apikit import tenant

NOT_ASCII = ["２０２６-11", "٢٠٢٦-11", "2026-１１", "𝟚𝟘𝟚𝟞-11"]
"""Fullwidth, Arabic-Indic, fullwidth month, mathematical digits: all match `\\d`."""
MEDIA = ["application/json", "text/csv", "application/pdf"]


@pytest.mark.parametrize("period", [*NOT_ASCII, "2026-11\n"])
def test_period_bounds_refuses_non_ascii_digits_and_a_trailing_newline(period: str) -> None:
    with pytest.raises(InvalidPeriodError):
        period_bounds(period)


def test_statements_api_refuses_non_ascii_digits_as_invalid_period_in_every_format(
    api: Any,
) -> None:
    t = tenant(api, credit="1.00")
    for period in [*NOT_ASCII, "2026-11\n", "September", "2026-1"]:
        for media in MEDIA:
            response = t.client.get(
                f"/v1/statements/{quote(period)}", headers={**t.auth, "Accept": media}
            )
            assert response.status_code == 422, (period, media, response.text)
            problem = response.json()
            assert problem["code"] == "invalid_period", (period, media, problem)
            assert "written like 2026-10" in problem["detail"]
    ok = t.client.get("/v1/statements/2026-11", headers={**t.auth, "Accept": "application/pdf"})
    assert ok.status_code == 200
    assert ok.content.startswith(b"%PDF-")


def test_openapi_documents_the_period_as_ascii_digits(api_without_db: Any) -> None:
    operation = api_without_db.get("/openapi.json").json()["paths"]["/v1/statements/{period}"][
        "get"
    ]
    (period,) = [p for p in operation["parameters"] if p["name"] == "period"]
    assert period["schema"]["pattern"] == "^[0-9]{4}-[0-9]{2}$"


def test_cli_statement_refuses_non_ascii_digits_without_a_traceback(
    cli: CliRunner, api: Any, tmp_path: Path
) -> None:
    account = tenant(api).account_id
    target = tmp_path / "x.pdf"
    for output_format in ["text", "json", "csv", "pdf"]:
        args = ["statement", str(account), "２０２６-11", "--format", output_format]
        result = cli.invoke(app, [*args, "-o", str(target)])
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit), result.exception
        assert "error[invalid_period]" in result.output
    assert not target.exists()


def _statement(period: str, name: str) -> Statement:
    line = Line("usage", "SMS — ünïcödé 短信", -10_000, 0, 1)
    return Statement(1, name, "USD", period, 0, 1, 50_000, 0, (line,), 40_000, 0, 0)


def test_pdf_render_never_crashes_on_text_its_font_cannot_show() -> None:
    data = pdf.render(_statement("２０２６-11", "株式会社 Ωmega 🚀 \u0085"))
    assert data.startswith(b"%PDF-")
    text = pdfium.PdfDocument(data)[0].get_textpage().get_text_range()
    assert "Statement 2026-11" in text  # fullwidth digits spelled as their plain forms
    assert "Closing balance" in text


def test_pdf_spells_names_by_their_plain_letters_and_wraps_a_long_one() -> None:
    # Latin-1's core font used to print "Zoë Müller ?" and cut a long name off the page
    name = "Zoë Müller Łódź “Quotes” – dash " + "A" * 200
    page = pdfium.PdfDocument(pdf.render(_statement("2026-11", name)))[0]
    text = page.get_textpage().get_text_range()
    assert 'Zoë Müller Lódz "Quotes" - dash' in text  # ó is Latin-1; Ł and ź are not
    account_line = "".join(text.split("Account 1 - ")[1].split("(USD)")[0].split())
    assert "?" not in account_line
    assert account_line.endswith("A" * 200)  # whole, across the wrapped lines
    textpage = page.get_textpage()
    boxes = [textpage.get_charbox(i) for i in range(textpage.count_chars())]
    assert max(right for _left, _bottom, right, _top in boxes) <= page.get_width()
    textpage.close()
    page.close()
