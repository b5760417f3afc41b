"""A plan with no monthly free credit issues no grant, ledger entry or `free_credit.granted`
event (at account creation or in the cycle), and verify stays clean, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from talktime.store.wallet_tables import grants, ledger
from talktime.wallet import InvalidRequestError
from talktime.wallet.cycle import run_cycle
from wallet_helpers import PLAN, make_wallet

D = 1_000_000
APR1 = datetime(2026, 4, 1, tzinfo=UTC)
MAY1 = datetime(2026, 5, 1, tzinfo=UTC)


def counts(engine: sa.Engine, account: int) -> tuple[int, int]:
    """The account's grant rows and ledger entries."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(sa.func.count()).select_from(grants).where(grants.c.account_id == account)
        ).scalar()
        entries = conn.execute(
            sa.select(sa.func.count()).select_from(ledger).where(ledger.c.account_id == account)
        ).scalar()
    return int(found or 0), int(entries or 0)


def test_a_zero_credit_plan_grants_nothing_at_creation_or_in_the_cycle(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "create")
    assert account.balance.free == 0
    account_id = account.account.id
    assert counts(engine, account_id) == (0, 0)
    assert wallet.events(account_id, "free_credit.granted") == []
    [run] = run_cycle(engine, APR1)
    assert run.granted == 0
    assert counts(engine, account_id) == (0, 0)
    assert wallet.events(account_id, "free_credit.granted") == []
    assert wallet.balance(account_id, APR1).free_expires_at is None
    assert wallet.verify(MAY1) == []
    assert wallet.create_account("acme", "free", "create").replayed


def test_moving_to_a_zero_credit_plan_stops_the_free_credit_events(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account_id = wallet.create_account("acme", PLAN, "create").account.id
    wallet.set_plan(account_id, "free", "plan")
    run_cycle(engine, MAY1)
    granted = [e["payload"]["amount"] for e in wallet.events(account_id, "free_credit.granted")]
    assert granted == [10 * D]  # creation only; April and May had none
    assert len(wallet.events(account_id, "free_credit.expired")) == 1
    assert wallet.verify(MAY1) == []


def test_a_manual_grant_of_free_monthly_credit_is_refused_whatever_its_amount(
    engine: sa.Engine,
) -> None:
    """Only the cycle issues free monthly credit (for one period): a hand-made one would have
    no period and roll over for ever."""
    wallet = make_wallet(engine)
    account_id = wallet.create_account("acme", "free", "create").account.id
    for amount in (0, 5 * D):
        with pytest.raises(InvalidRequestError, match="only from the account's plan") as refused:
            wallet.grant(account_id, "free_monthly", amount, f"free-{amount}")
        assert refused.value.code == "invalid_request"
    assert counts(engine, account_id) == (0, 0)
    assert wallet.grants(account_id) == []
