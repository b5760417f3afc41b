"""`talktime rates list|show|import|validate|activate|deactivate`: the rate cards shipped and
imported, and the version in force.

Imported versions live under the `rate_cards_dir` setting as `<name>/<version>/` and never
change once imported; `activate` pins the version in force in `<name>/ACTIVE` there.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from talktime import money
from talktime.cli.app import app, console, err_console, fail, print_json
from talktime.config import get_settings
from talktime.errors import TalktimeError
from talktime.rating import (
    InvalidRateCardError,
    RateCard,
    import_card,
    is_shipped,
    list_cards,
    load_card,
    read_card,
)
from talktime.service import cards as card_service

rates_app = typer.Typer(
    help="Rate cards: list, show, import and validate versions; activate (pin) the one in force.",
    no_args_is_help=True,
)
app.add_typer(rates_app, name="rates")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _origin(card: RateCard) -> str:
    return "shipped" if is_shipped(card) else "imported"


@rates_app.command("list")
def rates_list(as_json: JsonOption = False) -> None:
    """Every card version, shipped and imported; `*` marks the version in force today, `pinned`
    the one `talktime rates activate` put in force."""
    settings = get_settings()
    try:
        cards = list_cards(settings.rate_cards_dir)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    states = {name: card_service.in_force(name, settings) for name in {c.name for c in cards}}
    rows = [
        {
            "name": c.name,
            "version": c.version,
            "effective_from": c.effective_from.isoformat(),
            "currency": c.currency,
            "in_force": states[c.name].version == c.version,
            "pinned": states[c.name].pin == c.version,
            "origin": _origin(c),
            "path": c.source,
        }
        for c in cards
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=Text(f"rate cards (imported ones in {settings.rate_cards_dir})"))
    for column in ("", "name", "version", "effective from", "currency", "origin", "pinned"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            "*" if row["in_force"] else "",
            str(row["name"]),
            str(row["version"]),
            str(row["effective_from"]),
            str(row["currency"]),
            str(row["origin"]),
            "pinned" if row["pinned"] else "",
        )
    console.print(table)


def card_rows(card: RateCard) -> dict[str, list[dict[str, Any]]]:
    """Every rate of `card` as plain rows, money as decimal strings, with their references."""
    sms = [
        {
            "direction": d,
            "country": c,
            "per_segment": money.format(r.per_segment),
            "rate": str(r.ref),
        }
        for (d, c), r in card.sms_rates.items()
    ]
    voice = [
        {
            "direction": d,
            "origin": o,
            "country": c,
            "type": t,
            "prefix": "",
            "per_minute": money.format(r.per_minute),
            "rate": str(r.ref),
        }
        for (d, o, c, t), r in card.voice_rates.items()
    ]
    voice += [
        {
            "direction": d,
            "origin": o,
            "country": "",
            "type": "",
            "prefix": prefix,
            "per_minute": money.format(r.per_minute),
            "rate": str(r.ref),
        }
        for (d, o), rows in card.voice_prefixes.items()
        for prefix, r in rows.items()
    ]
    numbers = [
        {"country": c, "type": t, "monthly": money.format(r.monthly), "rate": str(r.ref)}
        for (c, t), r in card.number_rates.items()
    ]
    return {"sms": sms, "voice": voice, "numbers": numbers}


@rates_app.command("show")
def rates_show(
    name: Annotated[str, typer.Argument(help="Card name.")] = "default",
    version: Annotated[str | None, typer.Option(help="Version (default: in force).")] = None,
    at: Annotated[
        str | None, typer.Option(help="The version in force on this date (YYYY-MM-DD).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A card's header, plans and every rate with its file and line."""
    settings = get_settings()
    if version is not None and at is not None:  # one names the version, so --at would be unused
        fail(
            "invalid_request",
            f"give --version or --at, not both: --version {version!r} names the version, "
            f"--at {at!r} the one in force that day",
        )
    try:
        when = dt.date.fromisoformat(at) if at is not None else None
    except ValueError:
        fail("invalid_date", f"--at {at!r} is not a date such as 2026-11-01")
    try:
        card = load_card(name, version, at=when, directory=settings.rate_cards_dir)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    summary = card.summary()
    # the pricing rules (increments, fees, rounding) under `rules`: `sms` and `voice` are rows
    rules = {"sms": summary.pop("sms"), "voice": summary.pop("voice")}
    data = {**summary, "rules": rules, **card_rows(card)}
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{card.ref}[/] effective from {card.effective_from} ({card.currency}), "
        f"{_origin(card)}: {escape(card.source)}",
        highlight=False,
    )
    console.print(card.description, highlight=False, markup=False)
    plans = ", ".join(f"{p} {money.format(c, 2)}" for p, c in card.plans.items())
    console.print(f"plans (monthly free credit): {plans}", highlight=False)
    fees = ", ".join(f"{d} {money.format(v)}" for d, v in card.sms_base_fee.items())
    console.print(
        f"sms: base fee per segment {fees or 'none'}; each message rounded: {card.sms_rounding}",
        highlight=False,
    )
    console.print(
        f"voice: billed in {card.voice_first_increment_s} s, then every "
        f"{card.voice_next_increment_s} s; connect fee {money.format(card.voice_connect_fee)} "
        f"a leg; each leg rounded: {card.voice_rounding}",
        highlight=False,
    )
    for table_name, rows in card_rows(card).items():
        table = Table(title=table_name)
        if not rows:
            continue
        for column in rows[0]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(Text(str(v)) for v in row.values()))
        console.print(table)


def _print_problems(path: Path, problems: list[dict[str, Any]]) -> None:
    """Each problem as `file:line:column: message` on stderr; a problem of the whole file
    (line 0) as `file: message`, and one of a whole line (column 0) as `file:line: message`."""
    for p in problems:
        where = str(path / p["file"])
        if p["line"]:
            where += f":{p['line']}" + (f":{p['column']}" if p["column"] else "")
        err_console.print(f"{where}: {p['message']}", highlight=False, markup=False, soft_wrap=True)


@rates_app.command("validate")
def rates_validate(
    path: Annotated[Path, typer.Argument(help="A rate card directory.")],
    as_json: JsonOption = False,
) -> None:
    """Check a card directory; print every problem as file:line:column: message."""
    try:
        card = read_card(path)
    except InvalidRateCardError as exc:
        problems = exc.extra.get("errors", [])
        if as_json:
            print_json({"valid": False, "errors": problems})
        else:
            _print_problems(path, problems)
        fail(exc.code, f"{len(problems)} problem(s) in {path}")
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    if as_json:
        print_json({"valid": True, **card.summary()})
        return
    console.print(
        Text(
            f"ok: {card.ref} effective from {card.effective_from}: {len(card.sms_rates)} SMS, "
            f"{len(card.voice_rates)} voice, "
            f"{sum(len(v) for v in card.voice_prefixes.values())} prefix, "
            f"{len(card.number_rates)} number rates, {len(card.plans)} plans"
        ),
        highlight=False,
    )


@rates_app.command("import")
def rates_import(
    path: Annotated[Path, typer.Argument(help="A rate card directory to import.")],
) -> None:
    """Validate a card and store it as a new immutable version under `rate_cards_dir`."""
    settings = get_settings()
    try:
        card, created = import_card(path, settings.rate_cards_dir)
    except TalktimeError as exc:
        _print_problems(path, exc.extra.get("errors", []))
        fail(exc.code, exc.detail)
    except OSError as exc:
        fail(
            "rate_cards_dir_not_writable",
            f"cannot store the card under {settings.rate_cards_dir} ({exc.strerror}): make it "
            "a writable directory or point the rate_cards_dir setting elsewhere",
        )
    state = "imported" if created else "already imported (same content)"
    console.print(
        # the whole path: a relative rate_cards_dir is relative to where the command ran, which
        # is not where a server started elsewhere looks
        Text(
            f"{state}: {card.ref} effective from {card.effective_from} in "
            f"{Path(card.source).resolve()}"
        ),
        highlight=False,
    )


def _pin_not_stored(directory: str, exc: OSError) -> NoReturn:
    fail(
        "rate_cards_dir_not_writable",
        f"cannot change the pin under {directory} ({exc.strerror}): make it a writable "
        "directory or point the rate_cards_dir setting elsewhere",
    )


def _report(state: card_service.InForce, as_json: bool) -> None:
    """The card's version in force now and whether it is pinned."""
    if as_json:
        print_json({"name": state.name, "version": state.version, "pinned": state.pinned})
        return
    if state.card is None:
        line = f"{state.name}: no version in force today"
    else:
        how = "pinned" if state.pinned else f"effective from {state.card.effective_from}"
        line = f"in force: {state.card.ref} ({how})"
    console.print(Text(line), highlight=False)


@rates_app.command("activate")
def rates_activate(
    name: Annotated[str, typer.Argument(help="Card name.")],
    version: Annotated[str, typer.Argument(help="The version to put in force.")],
    as_json: JsonOption = False,
) -> None:
    """Pin VERSION of card NAME: in force from now on whatever the effective dates (put a new
    version live now, or roll back), in every server process, until another is activated or
    `talktime rates deactivate NAME`."""
    settings = get_settings()
    try:
        state = card_service.activate(name, version, settings)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    except OSError as exc:
        _pin_not_stored(settings.rate_cards_dir, exc)
    _report(state, as_json)


@rates_app.command("deactivate")
def rates_deactivate(
    name: Annotated[str, typer.Argument(help="Card name.")],
    as_json: JsonOption = False,
) -> None:
    """Remove the pin of card NAME: the version with the latest effective date on or before
    today is in force again."""
    settings = get_settings()
    try:
        state = card_service.deactivate(name, settings)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    except OSError as exc:
        _pin_not_stored(settings.rate_cards_dir, exc)
    _report(state, as_json)
