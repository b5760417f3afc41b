"""Bootstrap without the API: `talktime accounts create`, `talktime accounts` (the list, to
check before re-running a bootstrap) and `talktime keys create`."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import sqlalchemy as sa
import typer

from talktime.cli.app import app, cli_text, console, fail, open_engine, print_json
from talktime.config import get_settings
from talktime.errors import TalktimeError
from talktime.ids import MAX_ID
from talktime.store.writer import writing

accounts_app = typer.Typer(
    help="Accounts: list them (the default), or create one on a plan.",
    invoke_without_command=True,
)
keys_app = typer.Typer(help="API keys: create one (shown once).", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")


MAX_KEY_NAME = 200
"""The longest key name (`api_keys.name`, and the API's limit)."""


def require_id(value: int, what: str) -> int:
    """Return `value` if it can be a row id (1 to 2^62), else refuse before any query."""
    if not 1 <= value <= MAX_ID:
        fail(
            "invalid_request",
            f"{what} {value} is out of range: ids are whole numbers from 1 to 2^62 ({MAX_ID})",
        )
    return value


DEFAULT_LIST_LIMIT = 100
"""How many accounts `talktime accounts` shows (the newest)."""


@accounts_app.callback()
def accounts_main(
    ctx: typer.Context,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=100_000,
            help=f"Without a command: show at most this many (the newest; {DEFAULT_LIST_LIMIT}).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Without a command: print the list as JSON.")
    ] = False,
) -> None:
    """Accounts: `talktime accounts` lists them; `talktime accounts create` makes one."""
    if ctx.invoked_subcommand is None:
        list_accounts(limit=DEFAULT_LIST_LIMIT if limit is None else limit, as_json=as_json)
    elif limit is not None or as_json:
        fail(
            "invalid_request",
            "--limit and --json before a command do nothing: give them with no command "
            "(`talktime accounts --json`) or after `list` (`talktime accounts list --json`)",
        )


@accounts_app.command("list")
def list_accounts(
    limit: Annotated[
        int, typer.Option(min=1, max=100_000, help="Show at most this many (the newest).")
    ] = DEFAULT_LIST_LIMIT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the accounts (oldest first): id, name, plan, status, currency, creation time."""
    from rich.table import Column, Table
    from rich.text import Text

    from talktime.ops.clock import iso
    from talktime.store.wallet_tables import accounts

    settings = get_settings()
    engine = open_engine(settings)
    columns = (accounts.c.id, accounts.c.name, accounts.c.plan, accounts.c.status)
    try:
        with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one()
            query = sa.select(*columns, accounts.c.currency, accounts.c.created_at)
            rows = conn.execute(query.order_by(accounts.c.id.desc()).limit(limit)).all()
    finally:
        engine.dispose()
    found = [
        {
            "id": r.id,
            "name": r.name,
            "plan": r.plan,
            "status": r.status,
            "currency": r.currency,
            "created_at": iso(r.created_at),
        }
        for r in reversed(rows)
    ]
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("no accounts yet (`talktime accounts create NAME --plan PLAN`)")
        return
    table = Table(
        Column("id", no_wrap=True),
        Column("name", overflow="fold"),
        Column("plan", overflow="fold"),
        Column("status", no_wrap=True),
        Column("currency", no_wrap=True),
        Column("created (UTC)", min_width=10),
    )
    for a in found:  # Text: names are shown as written, never read as markup
        created = (a["created_at"] or "")[:19].replace("T", " ")
        table.add_row(
            str(a["id"]), Text(a["name"]), Text(a["plan"]), a["status"], a["currency"], created
        )
    console.print(table)
    if total > len(found):
        console.print(f"the newest {len(found)} of {total} accounts (--limit to see more)")


def _amount(option: str, text: str) -> int:
    """``text`` as micro-units, or refuse it (`invalid_amount`) naming ``option``, as the API
    refuses an amount: malformed, signed, or over the wallet's bound."""
    from talktime import money
    from talktime.wallet.book import MAX_WALLET_AMOUNT

    try:
        amount = money.parse(text)
    except money.MoneyError as exc:
        fail("invalid_amount", f"{option}: {exc}")
    if amount > MAX_WALLET_AMOUNT:  # as the API: the wallet's bound, written as money
        fail(
            "invalid_amount",
            f"{option}: {text!r} is too large; give at most {money.format(MAX_WALLET_AMOUNT)}",
        )
    return amount


@accounts_app.command("create")
def create_account(
    name: Annotated[str, typer.Argument(help="The account's name.")],
    plan: Annotated[str, typer.Option(help="Plan (sets the monthly free credit).")],
    credit: Annotated[str, typer.Option(help="Purchased credit to start with, e.g. 25.00.")] = "0",
    rate_card: Annotated[
        str | None, typer.Option("--rate-card", help="Rate card (default: the configured one).")
    ] = None,
    low_balance_threshold: Annotated[
        str | None,
        typer.Option(
            "--low-balance-threshold",
            help="Queue a `balance.low` event when available credit falls under this, e.g. 5.00.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the account as JSON.")] = False,
) -> None:
    """Create an account and print its id."""
    from talktime.service import admin

    settings = get_settings()
    name = cli_text(name, "account name")
    amount = _amount("--credit", credit)
    threshold = None
    if low_balance_threshold is not None:
        threshold = _amount("--low-balance-threshold", low_balance_threshold)
    engine = open_engine(settings)
    try:
        created = admin.create_account(
            engine,
            settings,
            name,
            plan,
            f"cli:{uuid.uuid4().hex}",
            credit=amount,
            rate_card=rate_card,
            low_balance_threshold=threshold,
        )
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    finally:
        engine.dispose()
    account = json.loads(created.body)
    if as_json:
        print_json(account)
    else:
        console.print(str(account["id"]), highlight=False)


@keys_app.command("create")
def create_key(
    account: Annotated[int | None, typer.Argument(help="Account id (omit with --admin).")] = None,
    admin_key: Annotated[bool, typer.Option("--admin", help="Create an admin key.")] = False,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
) -> None:
    """Create an API key and print it once (it is stored only as a hash)."""
    from talktime import keys
    from talktime.service.accounts import require_account
    from talktime.service.errors import NotFoundError

    if admin_key == (account is not None):
        fail("invalid_request", "give an ACCOUNT id, or --admin for an admin key (not both)")
    if account is not None:
        require_id(account, "account id")
    name = cli_text(name, "key name")
    if len(name) > MAX_KEY_NAME:  # the column's width (PostgreSQL would refuse a longer one)
        fail(
            "invalid_request",
            f"--name is {len(name)} characters long; a key name has at most {MAX_KEY_NAME}",
        )
    settings = get_settings()
    engine = open_engine(settings)
    try:
        with writing(engine) as conn:
            if account is not None:
                try:
                    require_account(conn, account)
                except NotFoundError:
                    # the code every other command gives an unknown account (`usage`,
                    # `statement`...); the API's admin routes answer 404 `not_found`
                    fail("account_not_found", f"no account {account}")
            new = keys.create_key(conn, account, admin=admin_key, name=name)
    except TalktimeError as exc:
        fail(exc.code, exc.detail)
    finally:
        engine.dispose()
    console.print(new.token, highlight=False, soft_wrap=True)
