"""A quoted CSV cell whose quote does not close on its line is refused, naming file, line and
column: a note may not contain a line break.

Before, the loader cut the lines before reading CSV, so `outbound,IT,0.02,"first line` followed
by `outbound,ES,0.5,smuggled"` priced ES at 0.5, where every CSV reader and spreadsheet sees one
IT row whose note holds a line break."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talktime.cli import app
from talktime.rating import InvalidRateCardError, import_card, read_card
from talktime.rating.loader import FILES, _unclosed_quote

from apikit import ADMIN
from ratecards import copy_card

SMUGGLED = 'outbound,IT,0.02,"first line\noutbound,ES,0.5,smuggled"\n'


def smuggling_card(tmp_path: Path) -> tuple[Path, int]:
    """The default card with the two lines above appended to sms.csv, and the first's number."""
    card = copy_card(tmp_path / "card", append={"sms.csv": SMUGGLED})
    lines = (card / "sms.csv").read_text().split("\n")
    return card, lines.index('outbound,IT,0.02,"first line') + 1


def problems(path: Path) -> list[tuple[str, int, int, str]]:
    with pytest.raises(InvalidRateCardError) as caught:
        read_card(path)
    return [(e["file"], e["line"], e["column"], e["message"]) for e in caught.value.extra["errors"]]


def test_a_note_quoted_across_lines_is_refused_naming_file_line_and_column(
    tmp_path: Path,
) -> None:
    card, line = smuggling_card(tmp_path)
    assert problems(card) == [
        (
            "sms.csv",
            line,
            4,
            "note: the quote that opens this cell is not closed on its line: a note may not "
            "contain a line break",
        )
    ]


def test_an_unclosed_quote_in_any_table_or_cell_is_refused(tmp_path: Path) -> None:
    card = copy_card(
        tmp_path / "card",
        append={"numbers.csv": '"GB,mobile,1.00\n', "voice.csv": 'inbound,,US,local,,"0.01\n'},
    )
    found = {(file, column, message.split(":")[0]) for file, _, column, message in problems(card)}
    assert found == {
        ("numbers.csv", 1, "country"),
        ("voice.csv", 6, "per_minute"),
    }


def test_quotes_that_close_on_their_line_are_read_as_before(tmp_path: Path) -> None:
    card = copy_card(
        tmp_path / "card",
        append={"sms.csv": 'outbound,IT,"0.02","a ""quoted"", note, with commas"\n'},
    )
    assert read_card(card).sms_rates[("outbound", "IT")].per_segment > 0


def test_rates_validate_prints_the_unclosed_quote_and_fails(tmp_path: Path, cli: Any) -> None:
    card, line = smuggling_card(tmp_path)
    result = cli.invoke(app, ["rates", "validate", str(card)])
    assert result.exit_code == 1
    assert f"{card / 'sms.csv'}:{line}:4: note: the quote that opens this cell" in result.stderr
    assert "error[invalid_rate_card]" in result.output


def test_importing_a_card_with_a_multiline_note_stores_nothing(tmp_path: Path) -> None:
    card, _ = smuggling_card(tmp_path)
    with pytest.raises(InvalidRateCardError):
        import_card(card, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_an_upload_with_a_multiline_note_is_422_naming_file_and_line(
    api: Any, tmp_path: Path
) -> None:
    card, line = smuggling_card(tmp_path)
    body = {name: (card / name).read_text() for name in FILES}
    body["card.toml"] = body["card.toml"].replace('"2026.11.1"', '"2099.1"')
    response = api.post("/v1/admin/rate-cards", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_rate_card"
    assert f"sms.csv:{line}:4: note: " in problem["detail"]
    assert [(e["file"], e["line"], e["column"]) for e in problem["errors"]] == [
        ("sms.csv", line, 4)
    ]
    listed = api.get("/v1/admin/rate-cards", headers=ADMIN).json()["cards"]
    assert "2099.1" not in {c["version"] for c in listed}
    assert not (tmp_path / "cards" / "default").exists()


@given(st.text(alphabet='ab," ', max_size=12))
def test_the_unclosed_cell_is_the_one_a_csv_reader_reads_into_the_next_line(line: str) -> None:
    rows = list(csv.reader([line + "\n", "z\n"]))
    continued = [i + 1 for i, cell in enumerate(rows[0]) if "\n" in cell]
    assert _unclosed_quote(line) == (continued[0] if continued else None)


def test_a_comment_line_with_an_unclosed_quote_is_refused_so_it_hides_no_rate_row(
    tmp_path: Path,
) -> None:
    # a comment to talktime is a row to a CSV reader: `# see below,"hidden` swallowed the ES
    # row there while talktime priced ES at 0.5
    card = copy_card(
        tmp_path / "card", append={"sms.csv": '# see below,"hidden\noutbound,ES,0.5,x"\n'}
    )
    found = [(file, column, message) for file, _, column, message in problems(card)]
    assert found[0] == (
        "sms.csv",
        2,
        "the quote that opens this cell is not closed on its line: a cell may not contain a "
        "line break",
    )
    closed = copy_card(tmp_path / "ok", append={"sms.csv": '# a "quoted" comment, fine\n'})
    read_card(closed)  # a comment whose quotes close is read as before
