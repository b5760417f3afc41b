"""What the embedded wallet refuses from a caller so that its own guarantees hold: keys in the
wallet's own namespaces (a recharge or rental could lose its key to them), priority 0 for any
credit but the free monthly credit (which must always be used first), and priced lines that do
not name their rate. Each refusal is `invalid_request` and changes nothing. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import ChargeItem, ChargeResult, InvalidRequestError, Wallet
from talktime.wallet.idempotency import RESERVED_KEY_PREFIXES
from wallet_helpers import FREE, PLAN, T0, make_wallet

RATE = "default@2026.11.1:sms.csv:12"


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


def _account(wallet: Wallet, paid: int = 5_000_000) -> int:
    account_id = wallet.create_account("Acme", PLAN, "create").account.id
    wallet.grant(account_id, "purchased", paid, "buy")
    return account_id


def _state(engine: sa.Engine, account_id: int) -> tuple[int, ...]:
    """Counts of the rows a write could add, and the account's credit left."""
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(sa.text(sql), {"a": account_id}).scalar_one())
            for sql in (
                "SELECT COUNT(*) FROM ledger WHERE account_id = :a",
                "SELECT COUNT(*) FROM idempotency WHERE account_id = :a",
                "SELECT COUNT(*) FROM holds WHERE account_id = :a",
                "SELECT COALESCE(SUM(remaining), 0) FROM grants WHERE account_id = :a",
                "SELECT COUNT(*) FROM accounts",
            )
        )


Write = Callable[[Wallet, int, int, str], Any]
"""A wallet write under a key: (wallet, account, a pending hold of it, key)."""

WRITES: dict[str, Write] = {
    "charge": lambda w, a, h, k: w.charge(a, 1_000, k),
    "grant": lambda w, a, h, k: w.grant(a, "promotional", 1_000, k),
    "authorize": lambda w, a, h, k: w.authorize(a, 1_000, k, timedelta(minutes=5)),
    "extend": lambda w, a, h, k: w.extend(h, 1_000, k),
    "settle": lambda w, a, h, k: w.settle(h, 1_000, k),
    "void": lambda w, a, h, k: w.void(h, k),
    "refund": lambda w, a, h, k: w.refund(a, w.grants(a)[-1].id, 1_000, k),
    "create_account": lambda w, a, h, k: w.create_account("Other", PLAN, k),
    "set_plan": lambda w, a, h, k: w.set_plan(a, PLAN, k),
    "set_status": lambda w, a, h, k: w.set_status(a, "past_due", k),
    "set_monthly_limit": lambda w, a, h, k: w.set_monthly_limit(a, 9_000_000, k),
    "set_low_balance_threshold": lambda w, a, h, k: w.set_low_balance_threshold(a, 1_000, k),
}


@pytest.mark.parametrize("prefix", RESERVED_KEY_PREFIXES)
@pytest.mark.parametrize("write", list(WRITES))
def test_a_caller_key_in_one_of_the_wallets_own_namespaces_is_refused_and_changes_nothing(
    wallet: Wallet, engine: sa.Engine, write: str, prefix: str
) -> None:
    account_id = _account(wallet)
    hold = wallet.authorize(account_id, 2_000, "hold", timedelta(minutes=5)).hold.id
    before = _state(engine, account_id)
    with pytest.raises(InvalidRequestError, match="reserved for the wallet's own") as refused:
        WRITES[write](wallet, account_id, hold, f"{prefix}{account_id}:1")
    assert refused.value.code == "invalid_request"
    assert _state(engine, account_id) == before
    WRITES[write](wallet, account_id, hold, f"mine-{prefix}{account_id}:1")  # not a prefix: fine
    assert wallet.verify() == []


def test_a_batch_item_with_a_reserved_key_is_refused_alone(
    wallet: Wallet, engine: sa.Engine
) -> None:
    account_id = _account(wallet)
    results = wallet.charge_batch(
        [
            ChargeItem(account_id, 1_000, "b1"),
            ChargeItem(account_id, 1_000, f"recharge:{account_id}:1"),
            ChargeItem(account_id, 2_000, "b3"),
            ChargeItem(account_id, 1_000, "rental:7:0"),
        ]
    )
    assert [type(r).__name__ for r in results] == [
        "ChargeResult",
        "InvalidRequestError",
        "ChargeResult",
        "InvalidRequestError",
    ]
    charged = [r.amount for r in results if isinstance(r, ChargeResult)]
    assert charged == [1_000, 2_000]
    assert wallet.balance(account_id).available == FREE + 5_000_000 - 3_000
    assert wallet.verify() == []


def test_a_grant_at_priority_zero_is_refused_so_free_credit_is_always_used_first(
    wallet: Wallet, engine: sa.Engine
) -> None:
    account_id = _account(wallet)
    before = _state(engine, account_id)
    for kind in ("purchased", "promotional", "refund"):
        with pytest.raises(InvalidRequestError, match="priority 0 is free monthly credit's"):
            wallet.grant(account_id, kind, 3_000_000, f"p0-{kind}", priority=0)
    assert _state(engine, account_id) == before
    wallet.grant(account_id, "purchased", 3_000_000, "p1", priority=1)
    charged = wallet.charge(account_id, 500_000, "use")
    assert (charged.from_free, charged.from_paid) == (500_000, 0)
    assert wallet.verify() == []


BAD_LINES: dict[str, Any] = {
    "a line without a rate": [{"kind": "sms", "amount": "0.0100"}],
    "a line whose rate is empty": [{"kind": "sms", "rate": ""}],
    "a line whose rate is not text": [{"kind": "sms", "rate": 12}],
    "one object instead of a list": {"kind": "sms", "rate": RATE},
    "a list of text": [RATE],
    "one good line beside a bad one": [{"rate": RATE}, {"kind": "sms"}],
}


@pytest.mark.parametrize("lines", list(BAD_LINES))
def test_priced_lines_that_do_not_name_their_rate_are_refused_and_change_nothing(
    wallet: Wallet, engine: sa.Engine, lines: str
) -> None:
    account_id = _account(wallet)
    hold = wallet.authorize(account_id, 2_000, "hold", timedelta(minutes=5)).hold.id
    before = _state(engine, account_id)
    with pytest.raises(InvalidRequestError, match="naming the rate-card version and rate"):
        wallet.charge(account_id, 1_000, "c", lines=BAD_LINES[lines])
    with pytest.raises(InvalidRequestError, match="naming the rate-card version and rate"):
        wallet.settle(hold, 1_000, "s", lines=BAD_LINES[lines])
    [refused] = wallet.charge_batch([ChargeItem(account_id, 1_000, "b", lines=BAD_LINES[lines])])
    assert isinstance(refused, InvalidRequestError)
    assert "naming the rate-card version and rate" in refused.detail
    assert _state(engine, account_id) == before


def test_priced_lines_that_name_their_rate_are_stored_as_given(
    wallet: Wallet, engine: sa.Engine
) -> None:
    account_id = _account(wallet)
    lines = [{"kind": "sms", "amount": "0.0100", "rate": RATE}]
    wallet.charge(account_id, 10_000, "c", reference="msg_1", lines=lines)
    wallet.charge(account_id, 10_000, "c-empty", reference="msg_2", lines=[])
    [entry] = [e for e in wallet.ledger(account_id).entries if e.reference == "msg_1"]
    assert entry.lines == lines
    assert wallet.verify(T0) == []
