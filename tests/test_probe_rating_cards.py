"""Rate card files as operators really write them (a spreadsheet's byte order mark, CRLF, a card
not yet in force, a dotted name) through `talktime rates` and the admin API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import get_settings
from talktime.rating import read_card, shipped_card_dir
from talktime.rating.loader import FILES

from apikit import ADMIN, idem, tenant
from ratecards import FIRST_SHIPPED, SHIPPED, copy_card

BOM = b"\xef\xbb\xbf"


@pytest.fixture
def cards_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Settings with no config file and imported cards under ``tmp_path/rate_cards``."""
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", str(tmp_path / "rate_cards"))
    monkeypatch.delenv("TALKTIME_RATE_CARD", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "rate_cards"
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("file", FILES)
def test_a_file_saved_with_a_byte_order_mark_reads_like_the_same_file_without(
    tmp_path: Path, file: str
) -> None:
    plain = read_card(copy_card(tmp_path / "plain"))
    marked = copy_card(tmp_path / "marked")
    path = marked / file
    path.write_bytes(BOM + path.read_bytes())
    card = read_card(marked)
    assert (card.digest, card.sms_rates, card.voice_rates, card.number_rates, card.plans) == (
        plain.digest,
        plain.sms_rates,
        plain.voice_rates,
        plain.number_rates,
        plain.plans,
    )


def test_crlf_line_ends_read_like_lf(tmp_path: Path) -> None:
    plain = read_card(copy_card(tmp_path / "plain"))
    crlf = copy_card(tmp_path / "crlf")
    for file in FILES:
        path = crlf / file
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    card = read_card(crlf)
    assert (card.sms_rates, card.voice_rates, card.number_rates, card.plans) == (
        plain.sms_rates,
        plain.voice_rates,
        plain.number_rates,
        plain.plans,
    )


def test_rates_list_shows_a_card_whose_only_version_is_not_in_force_yet(
    cards_dir: Path, tmp_path: Path
) -> None:
    future = copy_card(
        tmp_path / "future", header={"name": '"launch"', "effective_from": "2099-01-01"}
    )
    assert run("rates", "import", str(future))[0] == 0
    code, out, err = run("rates", "list", "--json")
    assert code == 0, err
    rows = {(c["name"], c["version"]): c["in_force"] for c in json.loads(out)}
    assert rows == {
        ("default", FIRST_SHIPPED): False,
        ("default", SHIPPED): True,
        ("launch", SHIPPED): False,
        ("passthrough", FIRST_SHIPPED): False,
        ("passthrough", SHIPPED): True,
    }
    code, out, err = run("rates", "list")
    assert code == 0, err
    assert "launch" in out


def test_rates_import_into_a_rate_cards_dir_that_is_a_file_is_a_clean_refusal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "cards-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", str(not_a_dir))
    get_settings.cache_clear()
    try:
        card = copy_card(tmp_path / "card", header={"version": '"2026.12"'})
        code, _, err = run("rates", "import", str(card))
    finally:
        get_settings.cache_clear()
    assert code == 1
    assert "error[rate_cards_dir_not_writable]" in err
    assert str(not_a_dir) in err
    assert "Traceback" not in err


def _upload(name: str, **changes: str) -> dict[str, str]:
    source = shipped_card_dir("default")
    files = {f: (source / f).read_text() for f in FILES}
    files["card.toml"] = files["card.toml"].replace('name = "default"', f'name = "{name}"')
    return {**files, **changes}


def test_an_upload_whose_csv_starts_with_a_byte_order_mark_is_imported(api: Any) -> None:
    body = _upload("excel")
    body["sms.csv"] = "\ufeff" + body["sms.csv"]
    response = api.post("/v1/admin/rate-cards", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    quote = api.post(
        "/v1/quotes/sms",
        json={"from": "+447400123450", "to": "+447400123456", "text": "hi", "card": "excel"},
    )
    assert quote.json()["total"] == "0.0500"


def test_a_card_with_a_dotted_name_can_be_assigned_to_an_account(api: Any) -> None:
    response = api.post("/v1/admin/rate-cards", json=_upload("acme.v2"), headers=ADMIN)
    assert response.status_code == 201, response.text
    created = tenant(api, number=None, rate_card="acme.v2")
    account = api.get(f"/v1/admin/accounts/{created.account_id}", headers=ADMIN).json()
    assert account["rate_card"] == "acme.v2"
    other = tenant(api, number=None)
    response = api.patch(
        f"/v1/admin/accounts/{other.account_id}",
        json={"rate_card": "acme.v2"},
        headers={**ADMIN, **idem()},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rate_card"] == "acme.v2"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1e"])
def test_a_note_holding_a_unicode_line_separator_stays_one_row(
    tmp_path: Path, separator: str
) -> None:
    card = copy_card(
        tmp_path / "card",
        append={"sms.csv": f'outbound,NZ,0.05,"plausible:{separator}New Zealand"\n'},
    )
    rate = read_card(card).sms_rates[("outbound", "NZ")]
    assert (rate.per_segment, rate.ref.line) == (60_000, 21)


def test_cr_only_line_ends_read_like_lf(tmp_path: Path) -> None:
    plain = read_card(copy_card(tmp_path / "plain"))
    old_mac = copy_card(tmp_path / "cr")
    for file in FILES:
        if file != "card.toml":  # TOML ends lines with LF or CR LF only
            path = old_mac / file
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    card = read_card(old_mac)
    assert (card.sms_rates, card.voice_rates, card.number_rates) == (
        plain.sms_rates,
        plain.voice_rates,
        plain.number_rates,
    )
