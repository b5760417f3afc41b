"""Rate cards: the shipped cards carry the seeds' figures; loading validates everything and names
file, line and column; versions are immutable and chosen by effective date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from talktime import money
from talktime.rating import (
    DestinationNotPricedError,
    InvalidRateCardError,
    RateCardNotFoundError,
    RateCardVersionExistsError,
    import_card,
    list_cards,
    load_card,
    read_card,
)
from talktime.rating.loader import version_order

from ratecards import FIRST_SHIPPED, SHIPPED, copy_card

CARDS = ["default", "passthrough"]

# The second seed's table: country/type -> (monthly, outbound domestic, inbound), per minute.
SEED_TABLE = [
    ("+14155550123", "US", "1", "0.013", "0.0085"),
    ("+16135550123", "CA", "1", "0.013", "0.0085"),
    ("+442071234567", "GB", "1", "0.015", "0.01"),
    ("+447400123456", "GB", "1", "0.029", "0.01"),
    ("+4915123456789", "DE", "5", "0.055", "0.01"),
    ("+61212345678", "AU", "2.50", "0.024", "0.01"),
    ("+61412345678", "AU", "6", "0.075", "0.01"),
]


@pytest.mark.parametrize("name", CARDS)
def test_shipped_cards_load_with_header_and_plans(name: str) -> None:
    card = load_card(name)
    assert card.name == name
    assert card.currency == "USD"
    assert (card.version, card.effective_from) == (SHIPPED, dt.date(2026, 12, 1))
    assert dict(card.plans) == {
        "startup": money.parse("2"),
        "professional": money.parse("5"),
        "business": money.parse("10"),
    }
    assert max(card.plans.values()) == 10 * money.DOLLAR  # "up to $10 free credit every month"
    assert (card.voice_first_increment_s, card.voice_next_increment_s) == (60, 60)
    assert card.voice_rounding == "none"  # calls to the minute, only SMS to the cent
    first = load_card(name, FIRST_SHIPPED)  # kept: calls authorized on it complete on it
    assert (first.effective_from, first.voice_rounding) == (dt.date(2026, 11, 1), "up_to_cent")
    assert load_card(name, at=dt.date(2026, 11, 30)).version == FIRST_SHIPPED


@pytest.mark.parametrize("name", CARDS)
@pytest.mark.parametrize(("number", "country", "monthly", "outbound", "inbound"), SEED_TABLE)
def test_shipped_cards_hold_the_second_seeds_voice_and_number_table(
    name: str, number: str, country: str, monthly: str, outbound: str, inbound: str
) -> None:
    card = load_card(name)
    assert card.number_rate(number).monthly == money.parse(monthly)
    assert card.voice_rate("outbound", country, number).per_minute == money.parse(outbound)
    assert card.voice_rate("inbound", None, number).per_minute == money.parse(inbound)


def test_us_and_canada_are_one_domestic_zone() -> None:
    card = load_card("default")
    us_to_ca = card.voice_rate("outbound", "US", "+16135550123")
    ca_to_us = card.voice_rate("outbound", "CA", "+14155550123")
    assert us_to_ca.per_minute == ca_to_us.per_minute == money.parse("0.013")


def test_the_rate_reference_names_card_version_file_and_line() -> None:
    card = load_card("default")
    rate = card.voice_rate("outbound", "US", "+14155550123")
    line = (card_dir("default") / "voice.csv").read_text().splitlines()[rate.ref.line - 1]
    assert line.startswith("outbound,US,US,local,,0.013,")
    assert str(rate.ref) == f"default@{SHIPPED}:voice.csv:{rate.ref.line}"


def card_dir(name: str) -> Path:
    from talktime.rating import shipped_card_dir

    return shipped_card_dir(name)


def test_a_plus_one_region_outside_us_ca_is_not_priced_as_us() -> None:
    card = load_card("default")
    with pytest.raises(DestinationNotPricedError) as caught:
        card.voice_rate("outbound", "US", "+17875550123")
    assert caught.value.code == "destination_not_priced"
    assert caught.value.status == 422
    assert caught.value.extra["country"] == "PR"


def test_a_crown_dependency_is_refused_unless_the_card_maps_it(tmp_path: Path) -> None:
    with pytest.raises(DestinationNotPricedError, match="GG"):
        load_card("default").voice_rate("outbound", "US", "+447781123456")
    path = copy_card(
        tmp_path / "c",
        replace={"card.toml": ("[overrides.regions]\n", '[overrides.regions]\nGG = "GB"\n')},
    )
    card = read_card(path)
    assert card.voice_rate("outbound", "US", "+447781123456").per_minute == money.parse("0.035")


def test_a_prefix_override_changes_the_type_priced(tmp_path: Path) -> None:
    path = copy_card(
        tmp_path / "c",
        replace={
            "card.toml": (
                "[overrides.prefix_types]\n",
                '[overrides.prefix_types]\n"+4474" = "local"\n',
            )
        },
    )
    card = read_card(path)
    assert card.voice_rate("outbound", "GB", "+447400123456").per_minute == money.parse("0.015")


def test_the_longest_prefix_row_wins(tmp_path: Path) -> None:
    path = copy_card(
        tmp_path / "c",
        append={"voice.csv": "outbound,GB,,,+44,0.5,\noutbound,GB,,,+44740,0.7,\n"},
    )
    card = read_card(path)
    assert card.voice_rate("outbound", "GB", "+447400123456").per_minute == money.parse("0.7")
    assert card.voice_rate("outbound", "GB", "+442071234567").per_minute == money.parse("0.5")
    assert card.voice_rate("outbound", "GB", "+447012345678").per_minute == money.parse("0.25")
    # Prefix rows are keyed by origin: a US caller ID still gets the country/type row.
    assert card.voice_rate("outbound", "US", "+442071234567").per_minute == money.parse("0.02")


def test_a_bad_cell_is_reported_with_file_line_and_column(tmp_path: Path) -> None:
    path = copy_card(tmp_path / "c", append={"voice.csv": "outbound,US,US,mobile,,1.5e3,\n"})
    lines = (path / "voice.csv").read_text().splitlines()
    with pytest.raises(InvalidRateCardError) as caught:
        read_card(path)
    errors = caught.value.extra["errors"]
    assert errors == [
        {"file": "voice.csv", "line": len(lines), "column": 6, "message": errors[0]["message"]}
    ]
    assert errors[0]["message"].startswith("per_minute:")
    assert f"voice.csv:{len(lines)}:6" in caught.value.detail
    assert caught.value.code == "invalid_rate_card"


def test_every_problem_is_collected_before_refusing(tmp_path: Path) -> None:
    path = copy_card(
        tmp_path / "c",
        append={
            "sms.csv": "sideways,US,0.01,\noutbound,XX,0.01,\noutbound,US,0.02,dup\n",
            "numbers.csv": "US,landline,1.00,\n",
            "voice.csv": "inbound,US,GB,local,,0.01,\noutbound,,GB,local,,0.01,\n",
        },
    )
    with pytest.raises(InvalidRateCardError) as caught:
        read_card(path)
    found = {
        (e["file"], e["column"], e["message"].split(":")[0]) for e in caught.value.extra["errors"]
    }
    assert ("sms.csv", 1, "direction") in found
    assert ("sms.csv", 2, "country") in found
    assert any(f == "sms.csv" and m.startswith("duplicate") for f, _, m in found)
    assert ("numbers.csv", 2, "type") in found
    assert ("voice.csv", 2, "origin") in found
    assert len(caught.value.extra["errors"]) == 6


@pytest.mark.parametrize(
    ("edit", "line", "needle"),
    [
        ({"header": {"effective_from": '"soon"'}}, 5, "effective_from"),
        ({"header": {"currency": '"dollars"'}}, 6, "currency"),
        ({"header": {"first_increment": "0"}}, 21, "first_increment"),
        ({"header": {"connect_fee": '"-1"'}}, 24, "connect_fee"),
        ({"header": {"startup": "2.00"}}, 31, "startup"),
        ({"header": {"outbound": '"0.0000001"'}}, 15, "decimals"),
        (
            {"replace": {"card.toml": ('"none"\n\n[plans]', '"nearest"\n\n[plans]')}},
            27,
            "voice",
        ),
        ({"replace": {"card.toml": ("name = ", "colour = 'blue'\nname = ")}}, 3, "unknown key"),
        ({"append": {"card.toml": "[[[\n"}}, 41, "TOML"),
    ],
)
def test_header_problems_name_the_line(
    tmp_path: Path, edit: dict[str, dict[str, object]], line: int, needle: str
) -> None:
    path = copy_card(tmp_path / "c", **edit)  # type: ignore[arg-type]
    with pytest.raises(InvalidRateCardError, match=needle) as caught:
        read_card(path)
    problem = caught.value.extra["errors"][0]
    assert problem["file"] == "card.toml"
    if line:
        assert problem["line"] == line


def test_missing_files_and_columns_are_reported(tmp_path: Path) -> None:
    path = copy_card(tmp_path / "c", replace={"sms.csv": ("per_segment,note", "price,note")})
    (path / "numbers.csv").unlink()
    with pytest.raises(InvalidRateCardError) as caught:
        read_card(path)
    assert caught.value.extra["errors"][0]["file"] == "numbers.csv"
    (path / "numbers.csv").write_text("country,type,monthly\n")
    with pytest.raises(InvalidRateCardError, match="missing column 'per_segment'"):
        read_card(path)


def test_an_unknown_card_or_version_is_refused() -> None:
    with pytest.raises(RateCardNotFoundError):
        load_card("nope")
    with pytest.raises(RateCardNotFoundError):
        load_card("default", "1999.1")
    with pytest.raises(RateCardNotFoundError, match="in force"):
        load_card("default", at=dt.date(2020, 1, 1))


def test_import_keeps_versions_immutable_and_picks_by_effective_date(tmp_path: Path) -> None:
    store = tmp_path / "cards"
    new = copy_card(
        tmp_path / "new",
        header={"version": '"2027.1"', "effective_from": "2027-01-01"},
        replace={"voice.csv": ("outbound,US,US,local,,0.013,", "outbound,US,US,local,,0.014,")},
    )
    card, created = import_card(new, store)
    assert created
    assert (store / "default" / "2027.1" / "voice.csv").is_file()
    assert import_card(new, store) == (card, False)  # same content again: nothing happens

    def us_rate(at: dt.date) -> int:
        chosen = load_card("default", at=at, directory=store)
        return chosen.voice_rate("outbound", "US", "+14155550123").per_minute

    assert us_rate(dt.date(2026, 12, 31)) == money.parse("0.013")
    assert us_rate(dt.date(2027, 1, 1)) == money.parse("0.014")
    old = load_card("default", "2026.11.1", directory=store)
    assert old.voice_rate("outbound", "US", "+14155550123").per_minute == money.parse("0.013")

    changed = copy_card(
        tmp_path / "changed",
        header={"version": '"2027.1"', "effective_from": "2027-01-01"},
    )
    with pytest.raises(RateCardVersionExistsError):
        import_card(changed, store)
    assert load_card("default", "2027.1", directory=store).digest == card.digest
    (store / "default" / ".2027.2.importing").mkdir()  # an interrupted import is not a version
    (store / "default" / ".2027.2.importing" / "card.toml").write_text("junk")
    names = [(c.name, c.version) for c in list_cards(store)]
    assert names == [
        ("default", FIRST_SHIPPED),
        ("default", SHIPPED),
        ("default", "2027.1"),
        ("passthrough", FIRST_SHIPPED),
        ("passthrough", SHIPPED),
    ]


def test_of_two_versions_of_one_date_the_higher_version_by_number_is_in_force(
    tmp_path: Path,
) -> None:
    store = tmp_path / "cards"
    for version, rate in (("2027.1.9", "0.014"), ("2027.1.10", "0.015"), ("2027.1.2", "0.016")):
        card = copy_card(
            tmp_path / version,
            header={"version": f'"{version}"', "effective_from": "2027-01-01"},
            replace={
                "voice.csv": ("outbound,US,US,local,,0.013,", f"outbound,US,US,local,,{rate},")
            },
        )
        import_card(card, store)
    chosen = load_card("default", at=dt.date(2027, 1, 1), directory=store)
    assert chosen.version == "2027.1.10"
    assert chosen.voice_rate("outbound", "US", "+14155550123").per_minute == money.parse("0.015")
    listed = [c.version for c in list_cards(store) if c.name == "default"]
    assert listed == [FIRST_SHIPPED, SHIPPED, "2027.1.2", "2027.1.9", "2027.1.10"]


@pytest.mark.parametrize(
    ("lower", "higher"),
    [("2026.11.9", "2026.11.10"), ("9", "10"), ("1.2", "1.2.1"), ("v2", "v10"), ("2", "a")],
)
def test_versions_order_runs_of_digits_as_numbers(lower: str, higher: str) -> None:
    assert version_order(lower) < version_order(higher)


def test_an_invalid_card_is_never_imported(tmp_path: Path) -> None:
    bad = copy_card(tmp_path / "bad", append={"numbers.csv": "US,mobile,one,\n"})
    with pytest.raises(InvalidRateCardError):
        import_card(bad, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_the_card_in_force_today_follows_imports_by_this_and_other_processes(
    tmp_path: Path,
) -> None:
    store = tmp_path / "cards"
    assert load_card("default", directory=store).version == SHIPPED
    first = copy_card(tmp_path / "first", header={"version": '"2026.12.2"'})
    import_card(first, store)  # this process: the cached choice is dropped
    assert load_card("default", directory=store).version == "2026.12.2"
    # another process's import only shows as a new directory: the stamp changes
    copy_card(store / "default" / "2026.12.3", header={"version": '"2026.12.3"'})
    assert load_card("default", directory=store).version == "2026.12.3"
    assert load_card("default", directory=store) is load_card("default", directory=store)


def _plans_section(text: str) -> str:
    start = text.index("[plans]")
    return text[start : text.index("\n\n", start) + 1]


@pytest.mark.parametrize(
    ("replace", "line", "column", "needle"),
    [
        # an inline table at the top: the problem's line and the key's column in it
        (
            (
                'currency = "USD"\n',
                'currency = "USD"\nplans = { startup = "2.00", business = "-1" }\n',
            ),
            7,
            29,
            "plans.business",
        ),
        # a dotted key at the top
        (('currency = "USD"\n', 'currency = "USD"\nsms.rounding = "half"\n'), 7, 1, "sms.rounding"),
    ],
)
def test_problems_of_dotted_keys_and_inline_tables_name_line_and_column(
    tmp_path: Path, replace: tuple[str, str], line: int, column: int, needle: str
) -> None:
    # only keys under a `[table]` header were found: these came without a line (0, 0)
    path = copy_card(tmp_path / "c")
    toml = path / "card.toml"
    text = toml.read_text()
    if needle.startswith("plans"):
        text = text.replace(_plans_section(text), "")
    else:
        start = text.index("[sms]\n")
        text = text[:start] + text[text.index("[sms.base_fee]") :]
    toml.write_text(text.replace(*replace, 1))
    with pytest.raises(InvalidRateCardError, match=needle) as caught:
        read_card(path)
    [problem] = [p for p in caught.value.extra["errors"] if needle in p["message"]]
    assert (problem["file"], problem["line"], problem["column"]) == ("card.toml", line, column)


def test_a_shipped_cards_directory_is_its_newest_version_unless_one_is_named() -> None:
    from talktime.rating import shipped_card_dir, shipped_cards_dir

    assert shipped_card_dir("default") == shipped_cards_dir() / "default" / SHIPPED
    first = shipped_card_dir("passthrough", FIRST_SHIPPED)
    assert first == shipped_cards_dir() / "passthrough" / FIRST_SHIPPED
    assert read_card(first).version == FIRST_SHIPPED
    with pytest.raises(RateCardNotFoundError, match="no shipped rate card 'nope'"):
        shipped_card_dir("nope")
    with pytest.raises(RateCardNotFoundError, match=r"'default' version '1999\.1'"):
        shipped_card_dir("default", "1999.1")


def test_a_shipped_version_never_changes_its_files() -> None:
    # the digest of every shipped version as first shipped: a change of rates is a new version
    digests = {(c.name, c.version): c.digest[:12] for c in list_cards()}  # shipped only
    assert digests == {
        ("default", FIRST_SHIPPED): "0140b478bd22",
        ("default", SHIPPED): "ce54cc2f7d3b",
        ("passthrough", FIRST_SHIPPED): "9aa1cc94337a",
        ("passthrough", SHIPPED): "aa885386a964",
    }


def test_an_import_made_before_a_version_of_the_same_name_shipped_keeps_its_rates(
    tmp_path: Path,
) -> None:
    # an operator imported their own default@2026.12.1 before talktime shipped one
    store = tmp_path / "cards"
    copy_card(
        store / "default" / SHIPPED,
        replace={"voice.csv": ("outbound,US,US,local,,0.013,", "outbound,US,US,local,,0.011,")},
    )
    card = load_card("default", directory=store)
    assert (card.version, Path(card.source).parent) == (SHIPPED, store / "default")
    assert card.voice_rate("outbound", "US", "+14155550123").per_minute == money.parse("0.011")
    assert load_card("default", SHIPPED, directory=store).source == card.source
    versions = [(c.version, c.source) for c in list_cards(store) if c.name == "default"]
    assert [v for v, _ in versions] == [FIRST_SHIPPED, SHIPPED]
    assert versions[1][1] == card.source


def test_an_operators_own_version_stays_in_force_over_a_later_shipped_one(
    tmp_path: Path,
) -> None:
    # imported default@2026.11.2, effective 2026-11-15: before 2026.12.1 shipped it was in
    # force; a shipped version dated later must not displace it on upgrade
    store = tmp_path / "cards"
    import_card(
        copy_card(
            tmp_path / "own",
            header={"version": '"2026.11.2"', "effective_from": "2026-11-15"},
            replace={"voice.csv": ("outbound,US,US,local,,0.013,", "outbound,US,US,local,,0.02,")},
        ),
        store,
    )
    for day in (dt.date(2026, 11, 15), dt.date(2026, 12, 1), dt.date(2027, 6, 1)):
        assert load_card("default", at=day, directory=store).version == "2026.11.2"
    # days no imported version covers keep the shipped one of that day
    assert load_card("default", at=dt.date(2026, 11, 14), directory=store).version == (
        FIRST_SHIPPED
    )
    # the shipped versions stay loadable by name (a call authorized on one completes on it)
    assert load_card("default", SHIPPED, directory=store).version == SHIPPED
    # and another card's shipped versions are unaffected
    assert load_card("passthrough", at=dt.date(2026, 12, 1), directory=store).version == SHIPPED
