"""Rate card files: read and validate a card directory, find versions, import new ones, pin
the version in force.

A card is a directory holding `card.toml` (header: name, version, effective_from, currency, SMS
and voice rules, plans, overrides) and `sms.csv`, `voice.csv`, `numbers.csv`. Validation
collects every problem with file, line and column before refusing the card.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import hashlib
import os
import re
import shutil
import threading
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

import phonenumbers

from talktime import money
from talktime.numbers import E164, NUMBER_TYPES, NumberType, Overrides
from talktime.rating.card import (
    ANY_COUNTRY,
    DIRECTIONS,
    ROUNDINGS,
    NumberRate,
    RateCard,
    RateRef,
    Rounding,
    SmsRate,
    VoiceRate,
)
from talktime.rating.errors import (
    InvalidRateCardError,
    RateCardCurrencyError,
    RateCardNotFoundError,
    RateCardVersionExistsError,
)

HEADER: Final = "card.toml"
SMS: Final = "sms.csv"
VOICE: Final = "voice.csv"
NUMBERS: Final = "numbers.csv"
FILES: Final = (HEADER, SMS, VOICE, NUMBERS)
PIN: Final = "ACTIVE"
"""The file of `<rate_cards_dir>/<name>/` that pins the version in force of card `name`: it
holds that version's name. Upper case, so never a version (versions are lower case)."""
NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}\Z")
PLAN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
COUNTRIES: Final = frozenset(phonenumbers.SUPPORTED_REGIONS)
MAX_ROWS: Final = 200_000
MAX_CARD_AMOUNT: Final = 2**62
"""The largest amount a card may name: what a wallet takes (`talktime.wallet.book`'s
MAX_WALLET_AMOUNT). A larger plan credit or price was imported, then refused in micro-units by
every account created or charged with the card."""


def _card_money(text: Any) -> int:
    """`money.parse` bounded by `MAX_CARD_AMOUNT` (MoneyError beyond it)."""
    amount = money.parse(text)
    if amount > MAX_CARD_AMOUNT:
        raise money.MoneyError(
            f"{text!r} is more than a wallet holds; give at most {money.format(MAX_CARD_AMOUNT)}"
        )
    return amount


"""Bound on the rows of one table, so a runaway file is refused instead of eaten."""

SMS_COLUMNS: Final = ("direction", "country", "per_segment")
VOICE_COLUMNS: Final = ("direction", "origin", "country", "type", "prefix", "per_minute")
NUMBER_COLUMNS: Final = ("country", "type", "monthly")


@dataclass(frozen=True, slots=True)
class CardProblem:
    """One validation problem: where (file, line, column; 0 when unknown) and what."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class _Problems:
    def __init__(self) -> None:
        self.items: list[CardProblem] = []

    def add(self, file: str, line: int, column: int, message: str) -> None:
        self.items.append(CardProblem(file, line, column, message))

    def raise_if_any(self, where: str) -> None:
        if not self.items:
            return
        shown = "; ".join(str(p) for p in self.items[:5])
        more = f" (and {len(self.items) - 5} more)" if len(self.items) > 5 else ""
        raise InvalidRateCardError(
            f"rate card {where} is invalid: {shown}{more}",
            errors=[
                {"file": p.file, "line": p.line, "column": p.column, "message": p.message}
                for p in self.items
            ],
        )


def shipped_cards_dir() -> Path:
    """The directory of the cards shipped inside the package (`default`, `passthrough`), laid
    out as an imported one: `<name>/<version>/`. A shipped version, like an imported one,
    never changes: a new one is added beside it."""
    return Path(str(resources.files("talktime.rating") / "cards"))


def _shipped_versions(name: str) -> list[Path]:
    base = shipped_cards_dir() / name
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / HEADER).is_file())


def shipped_card_dir(name: str, version: str | None = None) -> Path:
    """The directory of a shipped card's ``version`` (default: its newest, by effective date
    then version); `RateCardNotFoundError` when there is none."""
    found = [_read_cached(str(path)) for path in _shipped_versions(name)]
    if version is not None:
        found = [card for card in found if card.version == version]
    if not found:
        what = f"{name!r}" if version is None else f"{name!r} version {version!r}"
        raise RateCardNotFoundError(f"no shipped rate card {what}", card=name)
    return Path(max(found, key=_by_date).source)


def read_card(path: Path | str) -> RateCard:
    """Read and validate the card in directory `path`; raise `InvalidRateCardError` listing
    every problem with file, line and column."""
    path = Path(path)
    if not path.is_dir():
        raise RateCardNotFoundError(f"{path} is not a rate card directory", path=str(path))
    problems = _Problems()
    texts: dict[str, str] = {}
    for name in FILES:
        file = path / name
        try:
            # utf-8-sig: a byte order mark (spreadsheets write one) is the file's signature,
            # not text of its first line
            texts[name] = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            problems.add(name, 0, 0, f"missing: a rate card needs {', '.join(FILES)}")
        except (OSError, UnicodeDecodeError) as exc:
            problems.add(name, 0, 0, f"cannot be read as UTF-8 text: {exc}")
    problems.raise_if_any(str(path))
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(name.encode() + b"\0" + texts[name].encode() + b"\0")
    header = _Header.parse(texts[HEADER], problems)
    # The tables are checked whatever the header holds (every problem at once): a header that
    # is not TOML at all leaves placeholders, as an invalid value in it does.
    card = _build(header or _PLACEHOLDER, texts, problems, digest.hexdigest(), str(path))
    problems.raise_if_any(str(path))
    return card


@dataclass(frozen=True)
class _Header:
    name: str
    version: str
    effective_from: dt.date
    currency: str
    description: str
    sms_rounding: Rounding
    sms_base_fee: Mapping[str, int]
    first_increment: int
    next_increment: int
    connect_fee: int
    voice_rounding: Rounding
    plans: Mapping[str, int]
    regions: Mapping[str, str]
    prefix_types: Mapping[str, NumberType]

    @staticmethod
    def parse(text: str, problems: _Problems) -> _Header | None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"at line (\d+), column (\d+)", str(exc))
            line, col = (int(match[1]), int(match[2])) if match else (0, 0)
            problems.add(HEADER, line, col, f"not valid TOML: {exc}")
            return None
        reader = _TomlReader(text, data, problems)
        known = {"name", "version", "effective_from", "currency", "description"}
        known |= {"sms", "voice", "plans", "overrides"}
        for key in data:
            if key not in known:
                reader.problem(key, f"unknown key {key!r}; known: {', '.join(sorted(known))}")
        name = reader.text("name", pattern=NAME, hint="lower-case letters, digits, . _ -")
        version = reader.text("version", pattern=NAME, hint="letters, digits, . _ -")
        effective = data.get("effective_from")
        if not isinstance(effective, dt.date) or isinstance(effective, dt.datetime):
            reader.problem("effective_from", "effective_from must be a TOML date (2026-11-01)")
            effective = dt.date.min
        currency = reader.text("currency", pattern=re.compile(r"[A-Z]{3}\Z"), hint="ISO 4217")
        description = data.get("description", "")
        sms = reader.table("sms", {"rounding", "base_fee"})
        voice = reader.table(
            "voice", {"first_increment", "next_increment", "connect_fee", "rounding"}
        )
        sms_rounding = reader.rounding(sms, "sms.rounding")
        base = reader.table("sms.base_fee", set(DIRECTIONS), sms.get("base_fee", {}))
        base_fee = {d: reader.money(base, f"sms.base_fee.{d}", "0") for d in DIRECTIONS}
        first = reader.seconds(voice, "voice.first_increment")
        nxt = reader.seconds(voice, "voice.next_increment")
        connect_fee = reader.money(voice, "voice.connect_fee", "0")
        voice_rounding = reader.rounding(voice, "voice.rounding")
        plans_raw = reader.table("plans", None)
        plans: dict[str, int] = {}
        for plan in plans_raw:
            if PLAN.match(plan) is None:
                reader.problem(
                    f"plans.{plan}", f"plan name {plan!r} must be lower-case letters, digits, _ -"
                )
                continue
            plans[plan] = reader.money(plans_raw, f"plans.{plan}", None)
        overrides = reader.table("overrides", {"regions", "prefix_types"})
        regions_raw = reader.table("overrides.regions", None, overrides.get("regions", {}))
        regions: dict[str, str] = {}
        for region, target in regions_raw.items():
            if region not in COUNTRIES:
                reader.problem(
                    f"overrides.regions.{region}",
                    f"overrides.regions: {region!r} is not a known region",
                )
            if not isinstance(target, str) or target not in COUNTRIES:
                reader.problem(
                    f"overrides.regions.{region}",
                    f"overrides.regions.{region}: {target!r} is not a region",
                )
            else:
                regions[region] = target
        types_raw = reader.table("overrides.prefix_types", None, overrides.get("prefix_types", {}))
        prefix_types: dict[str, NumberType] = {}
        for prefix, kind in types_raw.items():
            if not _is_prefix(prefix):
                reader.problem(
                    f"overrides.prefix_types.{prefix}",
                    f"overrides.prefix_types: {prefix!r} is not a +digits prefix",
                )
            if kind not in NUMBER_TYPES:
                reader.problem(
                    f"overrides.prefix_types.{prefix}",
                    f"overrides.prefix_types.{prefix}: type must be one of {NUMBER_TYPES}",
                )
            else:
                prefix_types[prefix] = cast(NumberType, kind)
        return _Header(
            name,
            version,
            effective,
            currency,
            str(description),
            sms_rounding,
            base_fee,
            first,
            nxt,
            connect_fee,
            voice_rounding,
            plans,
            regions,
            prefix_types,
        )


_PLACEHOLDER = _Header(
    "", "", dt.date.min, "", "", "none", dict.fromkeys(DIRECTIONS, 0), 60, 60, 0, "none", {}, {}, {}
)
"""The header the tables are checked with when card.toml is not TOML (the card is refused)."""


class _TomlReader:
    """Reads typed values out of parsed TOML; problems name the line where the key appears."""

    def __init__(self, text: str, data: dict[str, Any], problems: _Problems) -> None:
        self.lines = _lines(text)
        self.data = data
        self.problems = problems

    def line_of(self, key: str) -> tuple[int, int]:
        """Line and column of dotted `key` (`voice.rounding`) or table `[key]`; 0, 0 if absent."""
        table, _, leaf = key.rpartition(".")
        assignment = re.compile(rf'^\s*"?{re.escape(leaf)}"?\s*=')
        section = ""
        for number, line in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[+\s*([^\]]*?)\s*\]", line)
            if header:
                section = header[1].replace('"', "")
                if section == key:
                    return number, len(line) - len(line.lstrip()) + 1
            elif section == table and assignment.search(line):
                return number, len(line) - len(line.lstrip()) + 1
        return self._dotted_line_of(key)

    def _dotted_line_of(self, key: str) -> tuple[int, int]:
        """Line and column of `key` written as a dotted key (`sms.rounding = ...` at the top,
        `voice.connect_fee` under no header) or inside an inline table (`plans = { business =
        "-1" }`); 0, 0 if not found. (Only keys under a `[table]` header were found before
        1 Dec, so such problems were reported without a line.)"""
        section = ""
        for number, line in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[+\s*([^\]]*?)\s*\]", line)
            if header:
                section = header[1].replace('"', "").replace(" ", "")
                continue
            written = re.match(r'^\s*([A-Za-z0-9_\-". ]+?)\s*=', line)
            if written is None:
                continue
            path = written[1].replace('"', "").replace(" ", "")
            full = f"{section}.{path}" if section else path
            if full == key:
                return number, written.start(1) + 1
            rest = key.removeprefix(full + ".")
            if rest != key and "{" in line:
                inner = re.search(rf'[{{,]\s*"?{re.escape(rest)}"?\s*=', line)
                if inner is not None:
                    return number, inner.end() - len(inner[0].lstrip("{, \t")) + 1
        return 0, 0

    def problem(self, key: str, message: str) -> None:
        line, col = self.line_of(key)
        self.problems.add(HEADER, line, col, message)

    def text(self, key: str, *, pattern: re.Pattern[str], hint: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or pattern.match(value) is None:
            self.problem(key, f"{key} must be a string ({hint}), not {value!r}")
            return ""
        return value

    def table(self, key: str, allowed: set[str] | None, value: object = None) -> dict[str, Any]:
        if value is None:
            value = self.data.get(key, {})
        if not isinstance(value, dict):
            self.problem(key, f"[{key}] must be a table")
            return {}
        if allowed is not None:
            for sub in value:
                if sub not in allowed:
                    self.problem(
                        f"{key}.{sub}",
                        f"unknown key {key}.{sub}; known: {', '.join(sorted(allowed))}",
                    )
        return value

    def money(self, table: dict[str, Any], key: str, default: str | None) -> int:
        leaf = key.rsplit(".", 1)[-1]
        value = table.get(leaf, default)
        if value is None:
            self.problem(key, f"{key} is required")
            return 0
        try:
            return _card_money(value)
        except money.MoneyError as exc:
            self.problem(key, f"{key}: {exc}")
            return 0

    def seconds(self, table: dict[str, Any], key: str) -> int:
        value = table.get(key.rsplit(".", 1)[-1], 60)
        if type(value) is not int or not 1 <= value <= 3600:
            self.problem(key, f"{key} must be whole seconds between 1 and 3600, not {value!r}")
            return 60
        return value

    def rounding(self, table: dict[str, Any], key: str) -> Rounding:
        value = table.get(key.rsplit(".", 1)[-1], "none")
        if value not in ROUNDINGS:
            self.problem(key, f"{key} must be one of {ROUNDINGS}, not {value!r}")
            return "none"
        return cast(Rounding, value)


def _is_prefix(value: object) -> bool:
    return isinstance(value, str) and 2 <= len(value) <= 16 and E164.match(value + "0") is not None


_LINE_END: Final = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
    """The lines of a card file, cut only where CSV and TOML end a line (CR LF, CR, LF).

    `str.splitlines` also cuts at U+2028, U+0085, form feeds and the like, which a note may
    hold: the rest of that row then read as a row of its own.
    """
    return _LINE_END.split(text)


def _unclosed_quote(line: str) -> int | None:
    """The column (from 1) of the cell of CSV `line` whose opening quote is not closed on the
    line, None when every quote closes. Follows the `csv` module's reading (the excel dialect:
    a cell is quoted when it starts with `"`, `""` inside is a quote, text after the closing
    quote is kept): such a cell goes on into the next lines, as in every CSV reader and
    spreadsheet, where the card's lines, read one by one, would make rows of its rest."""
    column = 1
    state = "start"  # of a cell; "plain", "quoted", "quote" (a quote inside a quoted cell)
    for char in line:
        if state == "quoted":
            if char == '"':
                state = "quote"
        elif char == ",":
            column += 1
            state = "start"
        elif state in ("start", "quote"):  # a quote opens a cell, or is `""` in one
            state = "quoted" if char == '"' else "plain"
    return column if state == "quoted" else None


class _Table:
    """A CSV table: `#` comment lines and blank lines skipped, header checked, cells located."""

    def __init__(self, file: str, text: str, required: tuple[str, ...], problems: _Problems):
        self.file = file
        self.problems = problems
        self.required = required
        self.columns: dict[str, int] = {}
        self.rows: list[tuple[int, list[str]]] = []
        header_seen = False
        for number, line in enumerate(_lines(text), 1):
            if not line.strip():
                continue
            unclosed = _unclosed_quote(line)
            if line.lstrip().startswith("#"):
                # a comment to talktime, a row to a spreadsheet or CSV reader: its unclosed
                # quote would swallow the next lines there, so it may not hide a rate row
                if unclosed is not None:
                    self._unclosed(number, unclosed, False)
                continue
            cells = next(csv.reader([line]))
            if unclosed is not None:
                self._unclosed(number, unclosed, header_seen)
            if not header_seen:
                header_seen = True
                self._header(number, cells)
                continue
            if unclosed is not None:
                continue  # never a row: what a CSV reader reads on is the quoted cell's text
            if len(self.rows) >= MAX_ROWS:
                problems.add(file, number, 1, f"more than {MAX_ROWS} rows")
                break
            self.rows.append((number, cells))
        if not header_seen:
            problems.add(file, 1, 1, f"empty: the first line must name the columns {required}")

    def _unclosed(self, number: int, column: int, header_seen: bool) -> None:
        names = {index + 1: name for name, index in self.columns.items()}
        name = names.get(column, "") if header_seen else ""
        what = "a note" if name == "note" else "a cell"
        self.problems.add(
            self.file,
            number,
            column,
            f"{name + ': ' if name else ''}the quote that opens this cell is not closed on its "
            f"line: {what} may not contain a line break",
        )

    def _header(self, number: int, cells: list[str]) -> None:
        for index, name in enumerate(cells):
            name = name.strip()
            if name in self.columns:
                self.problems.add(self.file, number, index + 1, f"column {name!r} repeated")
            self.columns[name] = index
        for name in self.required:
            if name not in self.columns:
                self.problems.add(self.file, number, 1, f"missing column {name!r}")
        allowed = (*self.required, "note")  # a tuple: the message lists them in this order
        for name, index in self.columns.items():
            if name not in allowed:
                self.problems.add(
                    self.file,
                    number,
                    index + 1,
                    f"unknown column {name!r}; known: {', '.join(allowed)}",
                )

    def __iter__(self) -> Iterator[tuple[int, _Row]]:
        if any(name not in self.columns for name in self.required):
            return
        for number, cells in self.rows:
            if len(cells) > len(self.columns):
                self.problems.add(
                    self.file,
                    number,
                    len(self.columns) + 1,
                    f"{len(cells)} cells but {len(self.columns)} columns",
                )
                continue
            yield number, _Row(self, number, cells)


class _Row:
    def __init__(self, table: _Table, number: int, cells: list[str]) -> None:
        self.table = table
        self.number = number
        self.cells = cells
        self.ok = True

    def cell(self, name: str) -> str:
        index = self.table.columns[name]
        return self.cells[index].strip() if index < len(self.cells) else ""

    def bad(self, name: str, message: str) -> None:
        self.ok = False
        column = self.table.columns[name] + 1
        self.table.problems.add(self.table.file, self.number, column, f"{name}: {message}")

    def choice(self, name: str, allowed: tuple[str, ...], *, empty: bool = False) -> str:
        value = self.cell(name)
        if value == "" and empty:
            return value
        if value not in allowed:
            self.bad(name, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def country(self, name: str, *, empty: bool = False, wildcard: bool = False) -> str:
        value = self.cell(name)
        if (value == "" and empty) or (value == ANY_COUNTRY and wildcard):
            return value
        if value not in COUNTRIES:
            self.bad(name, f"{value!r} is not an ISO region code that phone numbers use")
        return value

    def money(self, name: str) -> int:
        try:
            return _card_money(self.cell(name))
        except money.MoneyError as exc:
            self.bad(name, str(exc))
            return 0


def _build(
    header: _Header, texts: dict[str, str], problems: _Problems, digest: str, source: str
) -> RateCard:
    def ref(file: str, line: int) -> RateRef:
        return RateRef(header.name, header.version, file, line)

    sms_rates: dict[tuple[str, str], SmsRate] = {}
    seen: dict[tuple[str, ...], int] = {}

    def unique(row: _Row, key: tuple[str, ...], file: str) -> bool:
        if key in seen:
            problems.add(file, row.number, 1, f"duplicate of the row on line {seen[key]}")
            return False
        seen[key] = row.number
        return True

    for number, row in _Table(SMS, texts[SMS], SMS_COLUMNS, problems):
        direction = row.choice("direction", DIRECTIONS)
        country = row.country("country", wildcard=True)
        price = row.money("per_segment")
        if row.ok and unique(row, (SMS, direction, country), SMS):
            base = header.sms_base_fee[direction]
            sms_rates[(direction, country)] = SmsRate(base + price, base, price, ref(SMS, number))

    voice_rates: dict[tuple[str, str, str, str], VoiceRate] = {}
    voice_prefixes: dict[tuple[str, str], dict[str, VoiceRate]] = {}
    for number, row in _Table(VOICE, texts[VOICE], VOICE_COLUMNS, problems):
        direction = row.choice("direction", DIRECTIONS)
        origin = row.country("origin", empty=True)
        prefix = row.cell("prefix")
        if direction == "outbound" and not origin:
            row.bad("origin", "an outbound row needs the caller ID's country")
        if direction == "inbound" and origin:
            row.bad("origin", "an inbound row is priced by the receiving number: leave it empty")
        if prefix:
            if not _is_prefix(prefix):
                row.bad("prefix", f"{prefix!r} is not an E.164 prefix such as +4470")
            for name in ("country", "type"):
                if row.cell(name):
                    row.bad(name, "a prefix row leaves country and type empty")
        else:
            row.country("country")
            row.choice("type", NUMBER_TYPES)
        per_minute = row.money("per_minute")
        if not row.ok:
            continue
        rate = VoiceRate(
            per_minute,
            header.first_increment,
            header.next_increment,
            header.connect_fee,
            header.voice_rounding,
            ref(VOICE, number),
        )
        if prefix:
            if unique(row, (VOICE, direction, origin, prefix), VOICE):
                voice_prefixes.setdefault((direction, origin), {})[prefix] = rate
        else:
            key = (direction, origin, row.cell("country"), row.cell("type"))
            if unique(row, (VOICE, *key), VOICE):
                voice_rates[key] = rate

    number_rates: dict[tuple[str, str], NumberRate] = {}
    for number, row in _Table(NUMBERS, texts[NUMBERS], NUMBER_COLUMNS, problems):
        country = row.country("country")
        kind = row.choice("type", NUMBER_TYPES)
        monthly = row.money("monthly")
        if row.ok and unique(row, (NUMBERS, country, kind), NUMBERS):
            number_rates[(country, kind)] = NumberRate(monthly, ref(NUMBERS, number))

    return RateCard(
        name=header.name,
        version=header.version,
        effective_from=header.effective_from,
        currency=header.currency,
        description=header.description,
        plans=header.plans,
        overrides=Overrides(header.regions, header.prefix_types),
        sms_rounding=header.sms_rounding,
        sms_base_fee=header.sms_base_fee,
        sms_rates=sms_rates,
        voice_first_increment_s=header.first_increment,
        voice_next_increment_s=header.next_increment,
        voice_connect_fee=header.connect_fee,
        voice_rounding=header.voice_rounding,
        voice_rates=voice_rates,
        voice_prefixes=voice_prefixes,
        number_rates=number_rates,
        digest=digest,
        source=source,
    )


@lru_cache(maxsize=64)
def _read_cached(path: str) -> RateCard:
    return read_card(path)


def card_dirs(name: str, directory: Path | str | None = None) -> list[Path]:
    """Every version directory of card `name`: the shipped ones, then `directory/name/*/` (not
    the pin file `ACTIVE` nor a directory being imported). An imported version of the same name
    as a shipped one (imported before that version shipped) replaces it: an operator's rates
    are never swapped for the example ones by an upgrade."""
    imported: list[Path] = []
    if directory is not None:
        base = Path(directory) / name
        if base.is_dir():
            imported = sorted(
                p
                for p in base.iterdir()
                if not p.name.startswith(".")  # not a staging dir nor a pin being written
                and p.is_dir()
                and (p / HEADER).is_file()
            )
    taken = {p.name for p in imported}
    return [p for p in _shipped_versions(name) if p.name not in taken] + imported


_Stamp = tuple[int | None, tuple[int, int] | None]
_IN_FORCE: dict[tuple[str, str | None, dt.date], tuple[_Stamp, RateCard]] = {}
"""The version in force of a card, by (name, directory, day), with the stamp it was chosen at."""
_IN_FORCE_LOCK = threading.Lock()
_NO_DIRECTORY: Final[_Stamp] = (-1, None)


def _versions_stamp(name: str, directory: Path | str | None) -> _Stamp:
    """Changes whenever a version of card ``name`` is imported or its pin is set or removed (by
    any process): the modification time of `directory/<name>/` (None while it does not exist)
    and the inode and modification time of its pin (None while there is none). The pin's inode
    is new on every write, so a change is seen even within the file system's clock tick.
    Without a directory the shipped cards never change."""
    if directory is None:
        return _NO_DIRECTORY
    base = os.path.join(directory, name)
    try:
        versions: int | None = os.stat(base).st_mtime_ns
    except OSError:
        return None, None
    try:
        pin = os.stat(os.path.join(base, PIN))
    except OSError:
        return versions, None
    return versions, (pin.st_ino, pin.st_mtime_ns)


def forget_cards_in_force() -> None:
    """Drop the cached choice of versions in force (an import or a pin in this process does
    it)."""
    with _IN_FORCE_LOCK:
        _IN_FORCE.clear()


def load_card(
    name: str = "default",
    version: str | None = None,
    *,
    at: dt.date | None = None,
    directory: Path | str | None = None,
) -> RateCard:
    """The version of card `name` to price with.

    Looks at the card shipped in the package and the imported versions under
    `directory/<name>/<version>/`. With `version`, exactly that version; otherwise the pinned
    version (`activate_card`) when `at` is today or later, else the version with the latest
    `effective_from` on or before `at` (default: today, UTC). Versions are immutable, so a
    loaded card is cached by path; today's choice is cached too, until the day changes, a
    version is imported or the pin changes (here, or by another process: the card's directory
    or its pin file changes).
    """
    if version is None and at is None:
        # The hot path (every send): two stats instead of listing the versions.
        key = (name, None if directory is None else str(directory), _today())
        stamp = _versions_stamp(name, directory)
        found = _IN_FORCE.get(key)
        if found is not None and found[0] == stamp:
            return found[1]
        card = _load_card(name, None, None, directory)
        with _IN_FORCE_LOCK:
            _IN_FORCE[key] = (stamp, card)
        return card
    return _load_card(name, version, at, directory)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _candidates(name: str, directory: Path | str | None) -> list[RateCard]:
    """Every version of card `name`; RateCardNotFoundError when it has none."""
    if NAME.match(name) is None:
        raise RateCardNotFoundError(f"{name!r} is not a rate card name", card=name)
    candidates = [_read_cached(str(path)) for path in card_dirs(name, directory)]
    if not candidates:
        raise RateCardNotFoundError(
            f"no rate card named {name!r}; `talktime rates list` shows the cards", card=name
        )
    return candidates


def _version_of(candidates: list[RateCard], version: str) -> RateCard | None:
    """The candidate of exactly ``version``, None if there is none."""
    return next((card for card in candidates if card.version == version), None)


def _load_card(
    name: str, version: str | None, at: dt.date | None, directory: Path | str | None
) -> RateCard:
    candidates = _candidates(name, directory)
    if version is not None:
        found = _version_of(candidates, version)
        if found is not None:
            return found
        raise RateCardNotFoundError(
            f"rate card {name!r} has no version {version!r}; `talktime rates list` shows its "
            "versions",
            card=name,
            version=version,
        )
    when = at or _today()
    # a pin holds from the day it was set on: an earlier day keeps the version its dates chose
    pin = _pin(name, directory)
    pinned = pin[0] if pin is not None and when >= pin[1] else None
    if pinned is not None:
        found = _version_of(candidates, pinned)
        if found is not None:
            return found
        raise RateCardNotFoundError(
            f"rate card {name!r} is pinned to version {pinned!r}, which it does not have: "
            f"`talktime rates activate {name} VERSION` pins another, `talktime rates "
            f"deactivate {name}` goes back to the effective dates",
            card=name,
            version=pinned,
        )
    in_force = [c for c in candidates if c.effective_from <= when]
    if not in_force:
        raise RateCardNotFoundError(
            f"no version of rate card {name!r} is in force on {when.isoformat()}", card=name
        )
    # The operator's own versions of a card take over from the shipped example ones: by date,
    # a shipped version is in force only on days no imported version covers (a shipped version
    # dated later never displaces an operator's rates; `activate` adopts it).
    imported = [c for c in in_force if not is_shipped(c)]
    return max(imported or in_force, key=_by_date)


def is_shipped(card: RateCard) -> bool:
    """Whether ``card`` is a version shipped inside the package (not an imported one)."""
    return Path(card.source).parent.parent == shipped_cards_dir()


def _by_date(card: RateCard) -> tuple[dt.date, tuple[tuple[tuple[int, int, str], ...], str]]:
    """The order of a card's versions: by effective date, then by version (`version_order`);
    the last one in force is the one that applies."""
    return card.effective_from, version_order(card.version)


_RUNS: Final = re.compile(r"\d+|\D+")


def version_order(version: str) -> tuple[tuple[tuple[int, int, str], ...], str]:
    """A sort key for version names that compares runs of digits as numbers, so
    ``2026.11.10`` comes after ``2026.11.9`` (and a digit run before a letter run); the name
    itself breaks the remaining ties (``2026.11.09`` / ``2026.11.9``)."""
    runs = tuple(
        (0, int(run), "") if run.isdigit() else (1, 0, run) for run in _RUNS.findall(version)
    )
    return runs, version


def pinned_version(name: str, directory: Path | str | None) -> str | None:
    """The version card `name` is pinned to (`activate_card`), None when it is not pinned."""
    pin = _pin(name, directory)
    return None if pin is None else pin[0]


def _pin(name: str, directory: Path | str | None) -> tuple[str, dt.date] | None:
    """Card `name`'s pin: the version and the UTC day it was set on (the file's first and
    second lines; a pin without a day holds for every day)."""
    if directory is None or NAME.match(name) is None:
        return None
    try:
        text = (Path(directory) / name / PIN).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    lines = text.split()
    if not lines:
        return None
    try:
        since = dt.date.fromisoformat(lines[1]) if len(lines) > 1 else dt.date.min
    except ValueError:
        since = dt.date.min
    return lines[0], since


def activate_card(name: str, version: str, directory: Path | str) -> tuple[RateCard, bool]:
    """Pin card `name` to `version`: it is the version in force from today on, whatever the
    effective dates, until another version is pinned or `deactivate_card` removes the pin (a
    day before the pin was set keeps the version its dates chose; so the monthly cycle prices
    a period that began before midnight, but after the pin, with the pinned version).

    The pin is the file `directory/<name>/ACTIVE` (also for a shipped card), replaced
    atomically and flushed to disk under the card's lock (`_card_lock`, as imports), so every
    process sees it at its next `load_card`. Returns the card and whether the pin changed
    (pinning the pinned version again changes nothing; of concurrent activations of one
    version exactly one says it changed).
    RateCardNotFoundError for an unknown card or version.
    """
    card = _load_card(name, version, None, directory)
    base = Path(directory) / name
    base.mkdir(parents=True, exist_ok=True)
    with _card_lock(directory, name):  # of two activations, one changes the pin, or both
        if pinned_version(name, directory) == card.version:
            return card, False
        staging = base / f".{PIN}.{uuid.uuid4().hex}"
        try:
            with staging.open("w", encoding="utf-8") as out:
                out.write(f"{card.version}\n{_today().isoformat()}\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(staging, base / PIN)
            _fsync_directory(base)  # the pin survives a crash once this returns
        finally:
            staging.unlink(missing_ok=True)
    forget_cards_in_force()
    return card, True


def deactivate_card(name: str, directory: Path | str) -> bool:
    """Remove the pin of card `name` (back to the effective dates); whether it had one.
    RateCardNotFoundError for an unknown card."""
    _candidates(name, directory)
    base = Path(directory) / name
    if not base.is_dir():
        return False  # a shipped card never pinned here
    with _card_lock(directory, name):
        try:
            (base / PIN).unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        _fsync_directory(base)
    forget_cards_in_force()
    return True


def list_cards(directory: Path | str | None = None) -> list[RateCard]:
    """Every valid card version, shipped and imported, by name then effective date."""
    names: set[str] = {p.name for p in shipped_cards_dir().iterdir() if p.is_dir()}
    if directory is not None and Path(directory).is_dir():
        names |= {p.name for p in Path(directory).iterdir() if NAME.match(p.name) and p.is_dir()}
    cards = [
        _read_cached(str(path)) for name in sorted(names) for path in card_dirs(name, directory)
    ]
    return sorted(cards, key=lambda c: (c.name, *_by_date(c)))


def import_card(source: Path | str, directory: Path | str) -> tuple[RateCard, bool]:
    """Validate the card in `source` and copy it to `directory/<name>/<version>/`.

    Returns the card and whether it was new. Importing the same version again with the same
    content does nothing; with different content it is refused: a version, once imported, never
    changes, so every charge that names it keeps meaning the same rate. Every version of a
    card prices in one currency (accounts priced with it are billed in that currency).

    Safe against concurrent imports, by threads or processes (several server workers): the
    files are copied to a staging directory of this import's own, validated there as a whole,
    and renamed into place while an exclusive lock on the card (`_card_lock`) is held around
    the checks (the version exists? the currency is the card's?) and the rename. Of imports
    of one version with different content exactly one is stored, whole; the others are
    refused. A crashed import leaves only a staging directory, which listings ignore and the
    card's next import removes.
    """
    card = read_card(source)  # refused before anything is created under `directory`
    if Path(directory).is_dir():
        found = _check_new_version(card, directory)  # checked again under the lock
        if found is not None:
            return found, False  # stored already: nothing to create (a read-only dir too)
    base = Path(directory) / card.name
    base.mkdir(parents=True, exist_ok=True)
    with _card_lock(directory, card.name):
        _remove_staging(base)
        # this import's own directory (as unique as tempfile.mkdtemp's, but made with the
        # umask's permissions like every version directory, where mkdtemp's are owner-only)
        staging = base / f".{card.version}.{uuid.uuid4().hex}{STAGING}"
        staging.mkdir()
        try:
            for file in FILES:
                _copy_durably(Path(source) / file, staging / file)
            try:
                staged = read_card(staging)  # the whole that will be stored, validated
            except InvalidRateCardError:
                staged = None
            if staged is None or staged.digest != card.digest:
                raise InvalidRateCardError(
                    f"rate card {source} changed while it was being imported; import it again",
                    errors=[],
                )
            found = _check_new_version(staged, directory)
            if found is not None:
                return found, False
            target = base / staged.version
            if (target / HEADER).exists():
                # a directory holding another version's card.toml (copied there by hand)
                raise RateCardVersionExistsError(
                    f"rate card {staged.ref}: {target} already holds a card; give the new "
                    "rates a new version",
                    card=staged.name,
                    version=staged.version,
                )
            if target.is_dir() and not target.is_symlink():
                # not a version (no card.toml, so card_dirs skips it): the leftover of an
                # import interrupted before imports were atomic; it refused every import since
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            staging.rename(target)
            _fsync_directory(base)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        forget_cards_in_force()
        return read_card(target), True


STAGING: Final = ".importing"
"""The suffix of an import's staging directory `<name>/.<version>.<random>.importing`."""


def _check_new_version(card: RateCard, directory: Path | str) -> RateCard | None:
    """The stored version equal to `card` (same version, same content), None when `card` is a
    new version; RateCardVersionExistsError when the version exists with other content,
    RateCardCurrencyError when another version prices in another currency. Called with the
    card's lock held, so no import changes the versions meanwhile."""
    olds = [read_card(existing) for existing in card_dirs(card.name, directory)]
    for old in olds:
        if old.version == card.version:
            if old.digest == card.digest:
                return old
            raise RateCardVersionExistsError(
                f"rate card {card.ref} already exists with different content; give the new "
                "rates a new version",
                card=card.name,
                version=card.version,
            )
    for old in olds:
        if old.currency != card.currency:
            raise RateCardCurrencyError(
                f"rate card {card.ref} prices in {card.currency} but {old.ref} prices in "
                f"{old.currency}: every version of a card keeps its currency; import the new "
                "rates as a card of another name",
                card=card.name,
                currency=card.currency,
                card_currency=old.currency,
            )
    return None


@contextmanager
def _card_lock(directory: Path | str, name: str) -> Iterator[None]:
    """Hold the exclusive lock of card `name`: an `flock` on `directory/.<name>.lock`, so it
    excludes other threads (each opens the file anew) and other processes alike. The file is
    never removed (removing it would let two holders lock two different files); its name
    starts with a dot, so it is never taken for a card."""
    path = Path(directory) / f".{name}.lock"
    # read-only is enough for flock, and 0o666 lets the umask decide who may open it: the
    # server's and an operator's CLI user (one group, a group-writable directory) share it
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_staging(base: Path) -> None:
    """Remove the staging directories of crashed imports under card directory `base` (the
    card's lock is held: no import is staging meanwhile)."""
    for path in base.iterdir():
        if path.name.startswith(".") and path.name.endswith(STAGING) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _copy_durably(source: Path, target: Path) -> None:
    """Copy `source` to `target` and flush it to disk before the rename publishes it."""
    shutil.copyfile(source, target)
    with target.open("rb") as out:
        os.fsync(out.fileno())


def _fsync_directory(path: Path) -> None:
    """Flush directory `path`'s entries (a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
