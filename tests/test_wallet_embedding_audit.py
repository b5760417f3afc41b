"""The embedded wallet as a library user meets it (an audit's findings): a purchase takes the
wallet's clock, events answer aware datetimes, the test provider is told to decline by the
wallet's own int ids, `grant`'s docstring offers only the kinds it takes, and opening a
PostgreSQL server that never answers fails within `pg_connect_timeout_seconds` instead of
waiting for ever."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from talktime.config import get_settings
from talktime.wallet import Wallet
from talktime.wallet.payments import TestProvider
from talktime.wallet.recharge import PaymentDeclinedError

T = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
D = 1_000_000


@pytest.fixture
def wallet(engine: sa.Engine) -> Wallet:
    wallet = Wallet(engine, clock=lambda: T)
    wallet.upsert_plan("free", 0)
    return wallet


def _paying_account(wallet: Wallet) -> int:
    account = wallet.create_account("A", "free", key="a").account.id
    wallet.set_payment_method(account, customer="cus_1", payment_method="pm_1")
    return account


def test_a_purchase_without_now_happens_at_the_wallets_clock(wallet: Wallet) -> None:
    account = _paying_account(wallet)
    bought = wallet.purchase(account, 5 * D, "order-1", TestProvider())
    assert bought.grant.effective_at == T  # it was the real time, so at T nothing was usable
    assert wallet.balance(account).paid == 5 * D
    assert wallet.charge(account, D, "c-1").from_paid == D


def test_events_answer_their_time_as_an_aware_utc_datetime(wallet: Wallet) -> None:
    account = _paying_account(wallet)
    wallet.grant(account, "purchased", D, "g-1")
    wallet.charge(account, D, "c-1")  # takes the last of it: credit.depleted
    events = wallet.events(account)
    assert events
    assert all(event["created_at"] == T for event in events)
    assert all(event["created_at"].tzinfo is not None for event in events)


def test_the_test_provider_declines_an_account_named_by_its_int_id(wallet: Wallet) -> None:
    account = _paying_account(wallet)
    provider = TestProvider()
    provider.decline(account)
    with pytest.raises(PaymentDeclinedError):
        wallet.purchase(account, D, "order-1", provider)
    provider.accept(account)
    assert wallet.purchase(account, D, "order-1", provider).grant.original == D


def test_grants_docstring_offers_only_the_kinds_it_takes() -> None:
    doc = Wallet.grant.__doc__ or ""
    assert "`free_monthly` is refused" in doc


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_a_postgresql_server_that_never_answers_fails_within_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKTIME_PG_CONNECT_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    try:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError):
            Wallet.open(f"postgresql+psycopg://u@127.0.0.1:{silent_server}/x").plans()
        assert time.monotonic() - started < 10  # it waited for ever
    finally:
        get_settings.cache_clear()


def test_the_api_key_readers_connection_has_the_connect_timeout_too() -> None:
    from talktime.api.pgkeys import AsyncKeyReader
    from talktime.store import make_engine

    get_settings.cache_clear()
    engine = make_engine("postgresql+psycopg://u@127.0.0.1:1/x")
    try:
        reader = AsyncKeyReader(engine)
        assert reader._kwargs["connect_timeout"] == str(get_settings().pg_connect_timeout_seconds)
        given = make_engine("postgresql+psycopg://u@127.0.0.1:1/x?connect_timeout=3")
        assert AsyncKeyReader(given)._kwargs["connect_timeout"] == "3"
        given.dispose()
    finally:
        engine.dispose()
