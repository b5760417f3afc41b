"""Benchmark: one monthly-cycle step of an account, against the size of its ledger.

The cycle judges the month-end expiry of free credit (`balance.low` / `credit.depleted`) on the
ledger as it stood at the period end, which reads the account's entries before it: that read
grows with the account. Builds one account per size on a fresh SQLite file (charges of one
micro-unit in batches of 1,000, `synchronous=FULL` as always), runs the cycle across the month
end and prints its time beside the smallest account's, measured in the same run.

    .venv/bin/python bench/cycle.py [--sizes 1000,100000,300000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from talktime.wallet import ChargeItem, Wallet
from talktime.wallet.cycle import run_cycle

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, 0, 5, tzinfo=UTC)


def cycle_step_ms(entries: int, directory: Path) -> float:
    """Milliseconds of `run_cycle` moving one account of ``entries`` usage entries into April."""
    wallet = Wallet.open(f"sqlite:///{directory / f'cycle-{entries}.db'}", migrate=True)
    try:
        wallet.upsert_plan("pro", 10_000_000, now=MARCH)
        account = wallet.create_account(
            "Big", "pro", "acct", now=MARCH, low_balance_threshold=5_000_000
        ).account.id
        wallet.grant(account, "purchased", 10**12, "buy", now=MARCH)
        day = MARCH + timedelta(days=1)
        for start in range(0, entries, 1_000):
            size = min(1_000, entries - start)
            items = [ChargeItem(account, 1, f"c{start + i}") for i in range(size)]
            wallet.charge_batch(items, now=day)
        began = time.perf_counter()
        runs = run_cycle(wallet.engine, APRIL)
        took = (time.perf_counter() - began) * 1000
        assert [r.account_id for r in runs] == [account]
        return took
    finally:
        wallet.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,300000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        figures = [(n, cycle_step_ms(n, Path(tmp))) for n in sizes]
    base = figures[0][1]
    for entries, ms in figures:
        print(f"cycle step, account of {entries:>9,} entries: {ms:8.1f} ms  ({ms / base:5.1f}x)")


if __name__ == "__main__":
    main()
