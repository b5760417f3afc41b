"""The embedded API on a database that was never migrated (`Wallet.open(url)` without
``migrate=True``) refuses every call with `database_not_migrated` (503) saying how to migrate,
alike on both backends. Before: a raw SQLAlchemy error, a different class per backend (SQLite
`OperationalError: no such table`, PostgreSQL `ProgrammingError` 42P01)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.errors import TalktimeError
from talktime.store import make_engine
from talktime.wallet import ChargeItem, DatabaseNotMigratedError, Wallet
from talktime.wallet import errors as wallet_errors
from talktime.wallet import recharge as rc
from talktime.wallet.cycle import run_cycle
from talktime.wallet.payments import TestProvider
from wallet_helpers import T0

CALLS: dict[str, Callable[[Wallet], object]] = {
    "upsert_plan": lambda w: w.upsert_plan("pro", 10_000_000),
    "plans": lambda w: w.plans(),
    "create_account": lambda w: w.create_account("Acme", "pro", "k"),
    "account": lambda w: w.account(1),
    "set_plan": lambda w: w.set_plan(1, "pro", "k"),
    "set_status": lambda w: w.set_status(1, "past_due", "k"),
    "set_monthly_limit": lambda w: w.set_monthly_limit(1, 5, "k"),
    "set_low_balance_threshold": lambda w: w.set_low_balance_threshold(1, 5, "k"),
    "grant": lambda w: w.grant(1, "purchased", 1_000, "k"),
    "charge": lambda w: w.charge(1, 1_000, "k"),
    "charge_batch": lambda w: w.charge_batch([ChargeItem(1, 1_000, "k")]),
    "authorize": lambda w: w.authorize(1, 1_000, "k", timedelta(minutes=5)),
    "extend": lambda w: w.extend(1, 1_000, "k"),
    "settle": lambda w: w.settle(1, 1_000, "k"),
    "void": lambda w: w.void(1, "k"),
    "expire_holds": lambda w: w.expire_holds(),
    "expire_grants": lambda w: w.expire_grants(),
    "run_cycle": lambda w: w.run_cycle(),
    "refund": lambda w: w.refund(1, 1, 1_000, "k"),
    "balance": lambda w: w.balance(1),
    "grants": lambda w: w.grants(1),
    "ledger": lambda w: w.ledger(1),
    "events": lambda w: w.events(),
    "verify": lambda w: w.verify(),
    "purge_idempotency": lambda w: w.purge_idempotency(),
    "book": lambda w: _in_book(w),
}


def _in_book(wallet: Wallet) -> None:
    with wallet.book() as book:
        book.account(1)


@pytest.fixture
def unmigrated(unmigrated_url: str) -> Iterator[Wallet]:
    wallet = Wallet.open(unmigrated_url, clock=lambda: T0)
    yield wallet
    wallet.close()


def _assert_not_migrated(exc: BaseException) -> None:
    assert isinstance(exc, TalktimeError)
    assert isinstance(exc, wallet_errors.DatabaseNotMigratedError)
    assert (exc.code, exc.status) == ("database_not_migrated", 503)
    assert "talktime db upgrade" in exc.detail
    assert "migrate=True" in exc.detail


def _tables(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_wallet_method_on_an_unmigrated_database_says_to_migrate(
    unmigrated: Wallet, unmigrated_url: str, method: str
) -> None:
    with pytest.raises(DatabaseNotMigratedError) as refused:
        CALLS[method](unmigrated)
    _assert_not_migrated(refused.value)
    assert _tables(unmigrated_url) == []  # nothing was created


def test_the_wallet_works_once_opened_with_migrate_after_the_refusal(unmigrated_url: str) -> None:
    with Wallet.open(unmigrated_url) as wallet, pytest.raises(DatabaseNotMigratedError):
        wallet.plans()
    with Wallet.open(unmigrated_url, migrate=True, clock=lambda: T0) as wallet:
        wallet.upsert_plan("pro", 10_000_000)
        account = wallet.create_account("Acme", "pro", "k").account.id
        assert wallet.balance(account).available == 10_000_000


def _engine_calls(engine: sa.Engine) -> dict[str, Callable[[], object]]:
    def configure() -> object:
        with engine.begin() as conn:
            return rc.configure(conn, 1, enabled=False, threshold=0, amount=1_000_000, now=0)

    def set_payment_method() -> object:
        with engine.begin() as conn:
            return rc.set_payment_method(conn, 1, customer="c", payment_method="p", now=0)

    return {
        "cycle.run_cycle": lambda: run_cycle(engine, T0),
        "recharge.configure": configure,
        "recharge.set_payment_method": set_payment_method,
        "recharge.purchase": lambda: rc.purchase(engine, 1, 1_000_000, "k", TestProvider()),
        "recharge.process_recharges": lambda: rc.process_recharges(engine, TestProvider(), T0),
    }


@pytest.mark.parametrize(
    "call",
    [
        "cycle.run_cycle",
        "recharge.configure",
        "recharge.set_payment_method",
        "recharge.purchase",
        "recharge.process_recharges",
    ],
)
def test_the_embedded_cycle_and_recharge_calls_on_an_unmigrated_database_say_to_migrate(
    unmigrated_url: str, call: str
) -> None:
    engine = make_engine(unmigrated_url)
    try:
        with pytest.raises(DatabaseNotMigratedError) as refused:
            _engine_calls(engine)[call]()
    finally:
        engine.dispose()
    _assert_not_migrated(refused.value)


def test_other_database_errors_are_not_called_unmigrated(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    with pytest.raises(sa.exc.DBAPIError) as raised, wallet.book() as book:
        book.conn.execute(sa.text("SELECT * FROM accounts WHERE nosuchcolumn = 1"))
    assert not isinstance(raised.value, TalktimeError)
    wallet.close()
