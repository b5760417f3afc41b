"""`Book.flush(commit=True)`: on PostgreSQL the COMMIT rides in the writes' round trip and the
BEGIN in the lock's, so a charge waits for the server twice; a write that fails there commits
nothing, and on both backends the transaction ends committed (or rolled back on a refusal)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.store import make_engine
from talktime.store.wallet_tables import ledger
from talktime.wallet import charges
from talktime.wallet.errors import InsufficientCreditError
from wallet_helpers import PLAN, make_wallet


def _entries(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one())


def test_flush_with_commit_leaves_the_charge_committed(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("Acme", PLAN, "create").account.id
    before = _entries(engine)
    with wallet.book() as book:
        charges.charge(book, account, 1_000, "c1")
    assert _entries(engine) == before + 1
    assert wallet.balance(account).free == 10_000_000 - 1_000
    # The reused connection starts the next transaction cleanly.
    wallet.charge(account, 1_000, "c2")
    assert wallet.verify() == []


def test_a_write_failing_in_the_committing_flush_commits_nothing(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("Acme", PLAN, "create").account.id
    wallet.charge(account, 1_000, "taken")
    before = _entries(engine)

    def charge_then_collide() -> None:
        with wallet.book() as book:
            charges.charge(book, account, 2_000, "fresh")
            # A second record under an existing key: the idempotency insert fails at flush.
            book.records.append((account, "taken", "charge", "x", "{}", book.now))

    with pytest.raises(sa.exc.IntegrityError):
        charge_then_collide()
    assert _entries(engine) == before
    assert wallet.balance(account).free == 10_000_000 - 1_000
    assert wallet.charge(account, 2_000, "fresh").replayed is False
    assert wallet.verify() == []


def _traced_syncs(engine: sa.Engine, trace: Path) -> Callable[[], int]:
    """Trace the libpq protocol of every new connection of ``engine`` into ``trace``; returns
    a function counting the Sync messages (one per wait for the server) sent since last call."""
    out = trace.open("w")

    @sa.event.listens_for(engine, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.pgconn.trace(out.fileno())

    seen = 0

    def syncs() -> int:
        nonlocal seen
        out.flush()
        total = sum(
            1 for line in trace.read_text().splitlines() if "\tF\t" in line and "Sync" in line
        )
        new, seen = total - seen, total
        return new

    return syncs


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_charge_on_postgresql_waits_for_the_server_twice(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        syncs = _traced_syncs(engine, tmp_path / "libpq.trace")
        wallet = make_wallet(engine)
        account = wallet.create_account("Acme", PLAN, "create").account.id
        wallet.charge(account, 1_000, "warm")  # the connection is now on the wallet's stack
        syncs()
        wallet.charge(account, 1_000, "counted")
        # BEGIN + lock + read in one round trip; writes + COMMIT in the second.
        assert syncs() == 2
        assert wallet.balance(account).free == 10_000_000 - 2_000
        assert wallet.verify() == []
        wallet.close()
    finally:
        engine.dispose()


def test_a_refused_charge_rolls_back_and_the_next_one_commits(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("Acme", PLAN, "create").account.id
    before = _entries(engine)
    with pytest.raises(InsufficientCreditError):
        wallet.charge(account, 10_000_000 + 1, "too-much")
    assert _entries(engine) == before
    wallet.charge(account, 1_000, "fits")
    wallet.charge(account, 1_000, "fits-too")
    assert _entries(engine) == before + 2
    assert wallet.balance(account).free == 10_000_000 - 2_000
    assert wallet.verify() == []
