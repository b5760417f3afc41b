"""`talktime quote sms|call|number`: price a message, a call or a number rental with a rate card.

Nothing is charged. `--json` prints the quote with money as decimal strings; a refusal exits 1
and prints `error[code]: sentence`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from talktime import money
from talktime.cli.app import app, cli_text, console, fail, print_json, read_stdin, read_utf8
from talktime.config import get_settings
from talktime.errors import TalktimeError
from talktime.rating import (
    Call,
    Quote,
    QuoteLine,
    RateCard,
    load_card,
    price_call,
    price_number_rental,
)
from talktime.service import messages as message_service

quote_app = typer.Typer(
    help="Price an SMS, a call or a number rental with a rate card (nothing is charged).",
    no_args_is_help=True,
)
app.add_typer(quote_app, name="quote")

CardOption = Annotated[
    str | None, typer.Option("--card", help="Rate card name (default: setting `rate_card`).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the quote as JSON.")]


def card_for(name: str | None) -> RateCard:
    """The card in force today: `name` or the configured default, shipped or imported."""
    settings = get_settings()
    return load_card(
        settings.rate_card if name is None else name, directory=settings.rate_cards_dir
    )


def _quantity(line: QuoteLine) -> str:
    """``1 segment``, ``2 segments``, ``1.5 minutes``: the unit in the singular for one."""
    unit = line.unit.removesuffix("s") if line.quantity == 1 else line.unit
    return f"{line.quantity} {unit}"


def show(quote: Quote, as_json: bool) -> None:
    """Print a quote as JSON or as a table of its lines."""
    if as_json:
        print_json(quote.to_dict())
        return
    table = Table(title=f"quote with {quote.card}@{quote.version} ({quote.currency})")
    table.add_column("line")
    for column in ("quantity", "unit price", "amount"):
        table.add_column(column, justify="right")
    table.add_column("rate", overflow="fold")
    for line in quote.lines:
        table.add_row(
            line.description,
            _quantity(line),
            money.format(line.unit_price),
            money.format(line.amount),
            str(line.rate),
        )
    console.print(table)
    console.print(
        f"[bold]total {money.format(quote.total)} {quote.currency}[/]",
        highlight=False,
    )


@quote_app.command("sms")
def quote_sms(
    text: Annotated[str, typer.Argument(help="The message text.")],
    from_: Annotated[str, typer.Option("--from", help="Sender, E.164 (+14155550123).")],
    to: Annotated[str, typer.Option("--to", help="Recipient, E.164.")],
    inbound: Annotated[bool, typer.Option("--inbound", help="A received message.")] = False,
    smart_encoding: Annotated[
        bool, typer.Option("--smart-encoding", help="Replace look-alikes to stay in GSM-7.")
    ] = False,
    card: CardOption = None,
    as_json: JsonOption = False,
) -> None:
    """Price one SMS: segments x the rate of the other party's country."""
    try:
        quote = message_service.quote_sms(
            card_for(card),
            from_,
            to,
            cli_text(text, "text"),
            "inbound" if inbound else "outbound",
            get_settings(),
            smart_encoding=smart_encoding,
        )
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    show(quote, as_json)


@quote_app.command("call")
def quote_call(
    source: Annotated[
        str | None,
        typer.Argument(help="Call description JSON file, or - for stdin (see README)."),
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Caller ID (outbound) or caller (inbound).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Called / receiving number.")] = None,
    duration: Annotated[int | None, typer.Option("--duration", help="Seconds.")] = None,
    inbound: Annotated[bool, typer.Option("--inbound", help="A received call.")] = False,
    card: CardOption = None,
    as_json: JsonOption = False,
) -> None:
    """Price a call: from a JSON description (file or stdin), or --from --to --duration."""
    flags = (from_, to, duration)
    try:
        if source is not None and any(f is not None for f in flags):
            fail("invalid_call", "give either a JSON description or --from/--to/--duration")
        if source is None and all(f is not None for f in flags):
            assert from_ is not None
            assert to is not None
            assert duration is not None
            call = Call("inbound" if inbound else "outbound", from_, to, duration)
        elif source is None and any(f is not None for f in flags):
            fail("invalid_call", "--from, --to and --duration go together")
        else:
            call = Call.from_dict(_read_json(source or "-"))
        quote = price_call(card_for(card), call)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    show(quote, as_json)


@quote_app.command("number")
def quote_number(
    number: Annotated[str, typer.Argument(help="The phone number, E.164.")],
    months: Annotated[int, typer.Option(help="Months of rental.")] = 1,
    card: CardOption = None,
    as_json: JsonOption = False,
) -> None:
    """Price renting a phone number for some months."""
    try:
        quote = price_number_rental(card_for(card), number, months)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    show(quote, as_json)


def _read_json(source: str) -> dict[str, object]:
    try:
        text = read_stdin() if source == "-" else read_utf8(Path(source).read_bytes(), source)
    except OSError as exc:
        fail("invalid_call", f"cannot read {source}: {exc.strerror}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail("invalid_call", f"{source} is not JSON: {exc}")
    if not isinstance(data, dict):
        fail("invalid_call", "a call description is a JSON object")
    return data
