"""Concurrency and crashes: parallel charges never overspend; acknowledged charges survive
SIGKILL. On SQLite and PostgreSQL (with at least 16 concurrent connections)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from talktime.config import Settings
from talktime.store import make_engine
from talktime.store.wallet_tables import ledger
from talktime.wallet import ChargeItem, ChargeResult, InsufficientCreditError, Wallet
from wallet_helpers import make_wallet

THREADS = 16


def _charge_from_threads(
    wallet_of_thread: Callable[[], Wallet],
    account: int,
    *,
    threads: int,
    each: int,
    read_between: bool = False,
) -> list[str]:
    """``threads`` threads started together each charge 1_000 ``each`` times (each thread on
    the wallet ``wallet_of_thread`` gives it), reading the balance after each charge if
    ``read_between``; returns the outcomes, "ok" or "refused"."""
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        wallet = wallet_of_thread()
        barrier.wait()
        for i in range(each):
            try:
                wallet.charge(account, 1_000, f"t{n}-{i}")
                outcome = "ok"
            except InsufficientCreditError:
                outcome = "refused"
            with lock:
                outcomes.append(outcome)
            if read_between:
                wallet.balance(account)

    started = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    return outcomes


def test_parallel_charges_succeed_exactly_as_often_as_the_credit_covers(db_url: str) -> None:
    engine = make_engine(db_url, Settings(pg_pool_size=THREADS + 2, pg_max_overflow=4))
    wallet = make_wallet(engine)
    account = wallet.create_account("Busy", "free", "busy").account.id
    wallet.grant(account, "purchased", 37 * 1_000, "credit")  # covers 37 charges of 1_000
    outcomes = _charge_from_threads(lambda: wallet, account, threads=THREADS, each=4)
    assert outcomes.count("ok") == 37
    assert outcomes.count("refused") == THREADS * 4 - 37
    assert wallet.balance(account).available == 0
    assert wallet.verify() == []
    engine.dispose()


@pytest.mark.parametrize("per_thread", [False, True], ids=["one-wallet", "wallet-per-thread"])
def test_an_in_memory_wallet_shared_by_threads_runs_their_writes_one_at_a_time(
    per_thread: bool,
) -> None:
    # One SQLite connection serves every thread of an in-memory engine: before 1 Dec two
    # threads' transactions interleaved on it ("cannot start a transaction within a
    # transaction", and ledger entries that no longer summed to the grants' balances). The
    # lock belongs to the engine, so short-lived wallets on one engine wait for each other too.
    with Wallet.open("sqlite://", migrate=True) as wallet:
        wallet.upsert_plan("free", 0)
        account = wallet.create_account("Shared", "free", "shared").account.id
        wallet.grant(account, "purchased", 50 * 1_000, "credit")  # covers 50 charges of 1_000
        outcomes = _charge_from_threads(
            lambda: Wallet(wallet.engine) if per_thread else wallet,
            account,
            threads=8,
            each=10,
            read_between=True,  # reads interleave with the others' writes
        )
        assert outcomes.count("ok") == 50
        assert outcomes.count("refused") == 30
        assert wallet.balance(account).available == 0
        assert wallet.verify() == []


def test_parallel_batches_over_shared_accounts_never_overspend(db_url: str) -> None:
    engine = make_engine(db_url, Settings(pg_pool_size=THREADS + 2, pg_max_overflow=4))
    wallet = make_wallet(engine)
    accounts = [wallet.create_account(f"A{i}", "free", f"a{i}").account.id for i in range(3)]
    for a in accounts:
        wallet.grant(a, "purchased", 10, f"credit-{a}")
    barrier = threading.Barrier(THREADS)
    successes: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        items = [ChargeItem(a, 1, f"b{n}-{a}") for a in random.sample(accounts, len(accounts))]
        barrier.wait()
        results = wallet.charge_batch(items)
        with lock:
            successes.extend(r.account_id for r in results if isinstance(r, ChargeResult))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(successes) == sorted(accounts * 10)
    assert wallet.verify() == []
    engine.dispose()


def _charge_forever(url: str, account: int, prefix: str, fd: int) -> None:
    """Crash-test child: charge in a loop, writing `key transaction_id` after each commit."""
    wallet = Wallet(make_engine(url))
    out = os.fdopen(fd, "w", buffering=1)
    out.write("ready\n")
    i = 0
    while True:
        result = wallet.charge(account, 1, f"{prefix}-{i}", reference=f"msg-{i}")
        out.write(f"{prefix}-{i} {result.transaction_id}\n")
        i += 1


def test_every_acknowledged_charge_survives_sigkill(db_url: str, engine: sa.Engine) -> None:
    wallet = Wallet(engine)  # the real clock, like the child's
    wallet.upsert_plan("crash", 10**12)
    account = wallet.create_account("Crashy", "crash", "crashy").account.id
    acknowledged: dict[str, str] = {}
    rng = random.Random(5)
    fork = multiprocessing.get_context("fork")
    for run in range(12):
        read_fd, write_fd = os.pipe()
        child = fork.Process(target=_charge_forever, args=(db_url, account, f"run{run}", write_fd))
        child.start()
        os.close(write_fd)
        with os.fdopen(read_fd) as lines:
            assert lines.readline().strip() == "ready"
            deadline = time.monotonic() + rng.uniform(0.01, 0.25)
            while time.monotonic() < deadline:
                line = lines.readline()
                if not line:
                    break
                key, transaction_id = line.split()
                acknowledged[key] = transaction_id
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join()
            for line in lines:  # acknowledged before the kill, read after it
                key, transaction_id = line.split()
                acknowledged[key] = transaction_id
    assert len(acknowledged) > 12
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                sa.select(ledger.c.idempotency_key, ledger.c.transaction_id).where(
                    ledger.c.kind == "usage"
                )
            ).all()
        )
    missing = {k: t for k, t in acknowledged.items() if stored.get(k) != t}
    assert missing == {}
    fresh = Wallet.open(db_url)  # "after restart"; close() disposes the engine it made
    assert fresh.verify() == []
    assert fresh.balance(account).free == 10**12 - len(stored)
    fresh.close()
