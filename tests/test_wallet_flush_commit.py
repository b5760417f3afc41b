"""`Book.flush(commit=True)`: on PostgreSQL the COMMIT rides in the writes' round trip; a write
that fails there commits nothing, and on both backends the transaction ends committed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime.store.wallet_tables import ledger
from talktime.wallet import charges
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
