"""Charges per second on SQLite and PostgreSQL: the wallet beside the bare SQL limit.

The bare limit is, on the same database, tables and durability settings, a conditional
`UPDATE grants ... WHERE remaining >= ?` plus one `INSERT INTO ledger` per charge, committed one
charge at a time and 100 to a commit. The wallet does a full durable charge (account lock, live
grants, idempotency record, ledger entries) per transaction, and `charge_batch` of 100. Then the
ledger is grown to `--entries` entries over `--accounts` accounts and both are measured again.

    .venv/bin/python bench/charge.py [--entries 10000000 --accounts 1000000] [--only sqlite]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from talktime.store import make_engine, upgrade
from talktime.wallet import ChargeItem, Wallet
from talktime.wallet.periods import to_micros

import pgserver

BATCH = 100
ROUNDS = 5
HOT_ACCOUNTS = 200
NOW = datetime(2026, 3, 10, tzinfo=UTC)


def rate(n: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return n / (time.perf_counter() - start)


def setup_accounts(wallet: Wallet) -> list[tuple[int, int]]:
    """Hot accounts, each with one big purchased grant: (account id, grant id)."""
    wallet.upsert_plan("bench", 0)
    out = []
    for i in range(HOT_ACCOUNTS):
        account = wallet.create_account(f"hot{i}", "bench", f"hot-{i}").account.id
        grant = wallet.grant(account, "purchased", 10**15, f"hot-credit-{i}").grant.id
        out.append((account, grant))
    return out


def bare(engine: sa.Engine, hot: list[tuple[int, int]], n: int, per_commit: int) -> float:
    """The bare statement pair through the raw DB-API connection."""
    raw = engine.raw_connection()
    paramstyle = "?" if engine.dialect.name == "sqlite" else "%s"
    update = (
        f"UPDATE grants SET remaining = remaining - {paramstyle} "
        f"WHERE id = {paramstyle} AND remaining >= {paramstyle}"
    )
    insert = (
        "INSERT INTO ledger (transaction_id, account_id, grant_id, amount, kind, created_at) "
        f"VALUES ({', '.join([paramstyle] * 6)})"
    )
    now = to_micros(NOW)
    rng = random.Random(1)
    sqlite = engine.dialect.name == "sqlite"

    def work() -> None:
        cur = raw.cursor()
        for start in range(0, n, per_commit):
            if sqlite:
                cur.execute("BEGIN IMMEDIATE")
            for i in range(start, start + per_commit):
                account, grant = rng.choice(hot)
                cur.execute(update, (1, grant, 1))
                assert cur.rowcount == 1
                cur.execute(insert, (f"bare{i}", account, grant, -1, "usage", now))
            raw.commit()
        cur.close()

    try:
        return rate(n, work)
    finally:
        raw.close()


def wallet_single(wallet: Wallet, hot: list[tuple[int, int]], n: int, tag: str) -> float:
    rng = random.Random(2)

    def work() -> None:
        for i in range(n):
            wallet.charge(rng.choice(hot)[0], 1, f"{tag}-{i}", reference=f"m{i}", now=NOW)

    return rate(n, work)


def wallet_batch(wallet: Wallet, hot: list[tuple[int, int]], n: int, tag: str) -> float:
    rng = random.Random(3)

    def work() -> None:
        for start in range(0, n, BATCH):
            items = [
                ChargeItem(rng.choice(hot)[0], 1, f"{tag}-{i}", reference=f"m{i}")
                for i in range(start, start + BATCH)
            ]
            wallet.charge_batch(items, now=NOW)

    return rate(n, work)


def grow(engine: sa.Engine, entries: int, accounts: int) -> None:
    """Add ``accounts`` accounts with one grant each and ``entries`` ledger entries over them."""
    now = to_micros(NOW)
    with engine.begin() as conn:
        base = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM accounts").scalar() or 0
        gbase = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM grants").scalar() or 0
        mod = "%" if engine.dialect.name == "sqlite" else "%%"
        if engine.dialect.name == "sqlite":
            series = "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s LIMIT {n}) "
            src = "s"
        else:
            series = ""
            src = "generate_series(1, {n}) AS s(x)"
        conn.exec_driver_sql(
            series.format(n=accounts)
            + "INSERT INTO accounts (id, name, currency, plan, status, anchor_at, period_start, "
            "period_end, created_at) SELECT x + "
            f"{base}, 'bulk', 'USD', 'bench', 'active', {now}, {now}, {now + 10**13}, {now} "
            f"FROM {src.format(n=accounts)}"
        )
        conn.exec_driver_sql(
            series.format(n=accounts)
            + "INSERT INTO grants (id, account_id, kind, original, remaining, held, priority, "
            f"effective_at, created_at) SELECT x + {gbase}, x + {base}, 'purchased', 1000000, "
            f"1000000, 0, 30, {now}, {now} FROM {src.format(n=accounts)}"
        )
        conn.exec_driver_sql(
            series.format(n=entries)
            + "INSERT INTO ledger (transaction_id, account_id, grant_id, amount, kind, "
            f"idempotency_key, created_at) SELECT 'bulk' || x, {base} + 1 + (x {mod} {accounts}), "
            f"{gbase} + 1 + (x {mod} {accounts}), -1, 'usage', 'bulk' || x, {now} "
            f"FROM {src.format(n=entries)}"
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in ("accounts", "grants"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
            conn.exec_driver_sql("CHECKPOINT")
    else:
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
    # The bulk insert left gigabytes of dirty pages in the OS cache: write them out now, or
    # the first fsync of the measurement pays for them.
    os.sync()


def measure(
    engine: sa.Engine, wallet: Wallet, hot: list[tuple[int, int]], n: int, tag: str
) -> dict[str, float]:
    """Best of ROUNDS interleaved rounds of ``n`` single charges (and 10 x ``n`` batched):
    the machine is shared, so each figure is taken at its least disturbed moment, and bare and
    wallet runs alternate."""
    best: dict[str, float] = {}
    per_round = max(n, BATCH)
    for r in range(ROUNDS):
        figures = {
            "bare single": bare(engine, hot, per_round, 1),
            "wallet single": wallet_single(wallet, hot, per_round, f"{tag}{r}s"),
            "bare batch": bare(engine, hot, per_round * 10, BATCH),
            "wallet batch": wallet_batch(wallet, hot, per_round * 10, f"{tag}{r}b"),
        }
        for name, value in figures.items():
            best[name] = max(best.get(name, 0.0), value)
    return best


def wal_frames(engine: sa.Engine, wallet: Wallet, hot: list[tuple[int, int]], tag: str) -> None:
    """SQLite only: WAL frames (pages) one commit writes, wallet against bare; a commit's cost
    grows with its frames (a write call each), then one fsync."""
    path = engine.url.database
    assert path is not None

    def frames(work: Callable[[], object]) -> int:
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            page = driver.execute("PRAGMA page_size").fetchone()[0]  # type: ignore[union-attr]
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
        work()
        return (os.path.getsize(f"{path}-wal") - 32) // (page + 24)  # header, frame headers

    single = (
        frames(lambda: wallet_single(wallet, hot, 1, f"{tag}fs")),
        frames(lambda: bare(engine, hot, 1, 1)),
    )
    batch = (
        frames(lambda: wallet_batch(wallet, hot, BATCH, f"{tag}fb")),
        frames(lambda: bare(engine, hot, BATCH, BATCH)),
    )
    print(
        f"    WAL frames per commit: single wallet {single[0]} / bare {single[1]}, "
        f"batch of {BATCH} wallet {batch[0]} / bare {batch[1]}"
    )


def report(label: str, figures: dict[str, float]) -> None:
    print(f"  {label}")
    for name, value in figures.items():
        print(f"    {name:<14} {value:>9,.0f} charges/s")
    print(
        f"    wallet/bare: single {figures['wallet single'] / figures['bare single']:.0%}"
        f" (target >= 50%), batch {figures['wallet batch'] / figures['bare batch']:.0%}"
        " (target >= 40%)"
    )


def run(url: str, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    upgrade(engine)
    wallet = Wallet(engine, clock=lambda: NOW)
    hot = setup_accounts(wallet)
    print(f"== {engine.dialect.name}")
    empty = measure(engine, wallet, hot, args.n, "e")
    report("small ledger", empty)
    if engine.dialect.name == "sqlite":
        wal_frames(engine, wallet, hot, "e")
    start = time.perf_counter()
    grow(engine, args.entries, args.accounts)
    print(
        f"  grew the ledger by {args.entries:,} entries over {args.accounts:,} accounts "
        f"in {time.perf_counter() - start:.0f}s"
    )
    big = measure(engine, wallet, hot, args.n, "g")
    report("large ledger", big)
    if engine.dialect.name == "sqlite":
        wal_frames(engine, wallet, hot, "g")
    for name in ("wallet single", "wallet batch"):
        print(f"    {name} large/small: {big[name] / empty[name]:.0%} (target >= 80%)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="single charges per round")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench.db", args)
    if args.only != "sqlite":
        server = pgserver.start(install=True)
        try:
            admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql("CREATE DATABASE bench")
            admin.dispose()
            run(server.url("bench"), args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
