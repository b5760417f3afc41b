"""`run_cycle`'s ``max_periods`` is checked like the wallet's other arguments (`invalid_request`,
nothing changed; before: a plain ValueError, and a float or string bound met the comparison
as given), and refusing to extend a hold past its deadline that the expiry job has not closed
yet says `state: expired` in its extra, as its sentence does (before: `state: pending`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import HoldNotPendingError, InvalidRequestError, Wallet
from talktime.wallet.cycle import run_cycle
from wallet_helpers import FREE, PLAN, T0, make_wallet

LATER = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


@pytest.mark.parametrize("bound", [0, -1, 1.5, 2.0, "3", True, False])
def test_run_cycle_refuses_a_max_periods_that_is_not_a_positive_int_and_changes_nothing(
    engine: sa.Engine, wallet: Wallet, bound: object
) -> None:
    account = wallet.create_account("Acme", PLAN, "a").account.id
    before = wallet.account(account)
    with pytest.raises(InvalidRequestError) as refused:
        run_cycle(engine, LATER, max_periods=bound)  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.status) == ("invalid_request", 400)
    assert "max_periods" in refused.value.detail
    assert wallet.account(account) == before
    assert wallet.balance(account, now=T0).free == FREE


def test_run_cycle_takes_a_max_periods_of_one(engine: sa.Engine, wallet: Wallet) -> None:
    wallet.create_account("Acme", PLAN, "a")
    assert len(run_cycle(engine, LATER, max_periods=1)) == 1


def test_extending_a_hold_past_its_deadline_says_expired_in_its_extra_and_changes_nothing(
    wallet: Wallet,
) -> None:
    account = wallet.create_account("Acme", PLAN, "a").account.id
    hold = wallet.authorize(account, 1_000_000, "h", timedelta(minutes=5)).hold
    late = T0 + timedelta(minutes=6)  # past the deadline; the expiry job has not run
    before = wallet.balance(account, now=late)
    with pytest.raises(HoldNotPendingError) as refused:
        wallet.extend(hold.id, 1_000, "x", now=late)
    assert refused.value.code == "hold_not_pending"
    assert f"hold {hold.id} is expired" in refused.value.detail
    assert refused.value.extra == {"hold_id": hold.id, "state": "expired"}
    assert wallet.balance(account, now=late) == before
    assert wallet.expire_holds(late) == 1  # still pending until the job closes it


def test_extending_a_closed_hold_still_names_its_state(wallet: Wallet) -> None:
    account = wallet.create_account("Acme", PLAN, "a").account.id
    hold = wallet.authorize(account, 1_000_000, "h", timedelta(minutes=5)).hold
    wallet.void(hold.id, "v")
    with pytest.raises(HoldNotPendingError) as refused:
        wallet.extend(hold.id, 1_000, "x")
    assert refused.value.extra == {"hold_id": hold.id, "state": "voided"}
    assert f"hold {hold.id} is voided" in refused.value.detail
