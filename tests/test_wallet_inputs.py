"""The embedded API refuses arguments of the wrong type or out of range with
`invalid_request`, before any query, alike on SQLite and PostgreSQL (before, PostgreSQL cast a
grant id of 29.5 to grant 30 and refunded it, and raised raw driver errors where SQLite stored
the value)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.wallet import ChargeItem, InvalidRequestError, Wallet
from wallet_helpers import PLAN, T0, make_wallet


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


def _setup(wallet: Wallet) -> tuple[int, int, int]:
    """An account with paid credit and a pending hold: (account, purchased grant, hold)."""
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    grant = wallet.grant(account, "purchased", 5_000_000, "buy").grant.id
    hold = wallet.authorize(account, 1_000, "auth", timedelta(minutes=5)).hold.id
    return account, grant, hold


def _state(wallet: Wallet, account: int) -> tuple[Any, ...]:
    page = wallet.ledger(account, limit=500)
    grants = [(g.id, g.remaining, g.held) for g in wallet.grants(account)]
    return wallet.balance(account), grants, [e.id for e in page.entries], len(wallet.events())


BAD: dict[str, Callable[[Wallet, int, int, int], object]] = {
    "refund of a grant id 29.5 (PostgreSQL refunded grant 30)": lambda w, a, g, h: w.refund(
        a,
        g - 0.5,
        1_000_000,
        "rf",  # type: ignore[arg-type]
    ),
    "refund of a grant id given as a string": lambda w, a, g, h: w.refund(
        a,
        str(g),
        1_000,
        "rf",  # type: ignore[arg-type]
    ),
    "charge of an account id 2^64": lambda w, a, g, h: w.charge(2**64, 1, "c"),
    "charge of an account id given as a float": lambda w, a, g, h: w.charge(
        a + 0.0,
        1,
        "c",  # type: ignore[arg-type]
    ),
    "charge of an account id True": lambda w, a, g, h: w.charge(True, 1, "c"),
    "charge with NaN in the priced lines": lambda w, a, g, h: w.charge(
        a, 1, "c", lines=[{"rate": "card@1:sms.csv:2", "amount": float("nan")}]
    ),
    "charge with an object in the priced lines": lambda w, a, g, h: w.charge(
        a, 1, "c", lines=[object()]
    ),
    "charge with a lone surrogate in the key": lambda w, a, g, h: w.charge(a, 1, "k\ud800"),
    "charge with a lone surrogate in the reference": lambda w, a, g, h: w.charge(
        a, 1, "c", reference="\ud800"
    ),
    "charge at a naive time": lambda w, a, g, h: w.charge(a, 1, "c", now=datetime(2026, 3, 10)),
    "charge at a date, not a datetime": lambda w, a, g, h: w.charge(
        a,
        1,
        "c",
        now=date(2026, 3, 10),  # type: ignore[arg-type]
    ),
    "charge at a time given as a string": lambda w, a, g, h: w.charge(
        a,
        1,
        "c",
        now="2026-03-10",  # type: ignore[arg-type]
    ),
    "a batch that is not a list of items": lambda w, a, g, h: w.charge_batch(None),  # type: ignore[arg-type]
    "a batch holding None": lambda w, a, g, h: w.charge_batch([None]),  # type: ignore[list-item]
    "settle of a hold id 2^64": lambda w, a, g, h: w.settle(2**64, 1, "s"),
    "settle with infinity in the lines": lambda w, a, g, h: w.settle(
        h, 1, "s", lines=[{"rate": "card@1:calls.csv:2", "x": float("inf")}]
    ),
    "void of a hold id given as a float": lambda w, a, g, h: w.void(
        h + 0.5,
        "v",  # type: ignore[arg-type]
    ),
    "extend of a hold id given as a string": lambda w, a, g, h: w.extend(
        str(h),
        1,
        "e",  # type: ignore[arg-type]
    ),
    "authorize for a thousand years": lambda w, a, g, h: w.authorize(
        a, 1, "a2", timedelta(days=365_000)
    ),
    "authorize with a ttl in seconds": lambda w, a, g, h: w.authorize(
        a,
        1,
        "a2",
        60,  # type: ignore[arg-type]
    ),
    "grant with priority 2^31 (PostgreSQL's integer column refused it)": lambda w, a, g, h: w.grant(
        a, "promotional", 1, "p", priority=2**31
    ),
    "grant with a priority given as a string": lambda w, a, g, h: w.grant(
        a,
        "promotional",
        1,
        "p",
        priority="1",  # type: ignore[arg-type]
    ),
    "grant expiring in the year 9999": lambda w, a, g, h: w.grant(
        a, "promotional", 1, "p", expires_at=datetime(9999, 12, 31, tzinfo=UTC)
    ),
    "grant effective at a naive time": lambda w, a, g, h: w.grant(
        a, "promotional", 1, "p", effective_at=datetime(2026, 1, 1)
    ),
    "plan change to a NUL name": lambda w, a, g, h: w.set_plan(a, "\x00", "sp"),
    "plan change to an int": lambda w, a, g, h: w.set_plan(a, 1, "sp"),  # type: ignore[arg-type]
    "account created with a NUL name": lambda w, a, g, h: w.create_account("\x00", PLAN, "n"),
    "account created with an int plan": lambda w, a, g, h: w.create_account(
        "B",
        1,
        "n",  # type: ignore[arg-type]
    ),
    "account created with a naive anchor": lambda w, a, g, h: w.create_account(
        "B", PLAN, "n", anchor=datetime(2026, 3, 1)
    ),
    "plan named with a NUL": lambda w, a, g, h: w.upsert_plan("\x00", 1),
    "monthly limit of an account id given as a string": lambda w, a, g, h: w.set_monthly_limit(
        str(a),
        1,
        "ml",  # type: ignore[arg-type]
    ),
    "balance of an account id given as a string": lambda w, a, g, h: w.balance(str(a)),  # type: ignore[arg-type]
    "balance in the year 9999": lambda w, a, g, h: w.balance(
        a, now=datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    ),
    "grants of an account id 2^63": lambda w, a, g, h: w.grants(2**63),
    "account of an account id True": lambda w, a, g, h: w.account(True),
    "ledger page of limit '5'": lambda w, a, g, h: w.ledger(a, limit="5"),  # type: ignore[arg-type]
    "ledger page with an int cursor": lambda w, a, g, h: w.ledger(a, cursor=5),  # type: ignore[arg-type]
    "ledger since a naive time": lambda w, a, g, h: w.ledger(a, since=datetime(2026, 1, 1)),
    "ledger filtered by a lone surrogate": lambda w, a, g, h: w.ledger(a, reference="\ud800"),
    "events of type 1": lambda w, a, g, h: w.events(a, type=1),  # type: ignore[arg-type]
    "events of a NUL type": lambda w, a, g, h: w.events(a, type="\x00"),
}


@pytest.mark.parametrize("call", list(BAD.values()), ids=list(BAD))
def test_a_wrong_type_or_out_of_range_argument_is_invalid_request_and_changes_nothing(
    wallet: Wallet, call: Callable[[Wallet, int, int, int], object]
) -> None:
    account, grant, hold = _setup(wallet)
    before = _state(wallet, account)
    plans = wallet.plans()
    with pytest.raises(InvalidRequestError) as refused:
        call(wallet, account, grant, hold)
    assert refused.value.code == "invalid_request"
    assert _state(wallet, account) == before
    assert wallet.plans() == plans
    assert len({a.name for a in _accounts(wallet)}) == 1


def _accounts(wallet: Wallet) -> list[Any]:
    with wallet.engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT name FROM accounts"))


def test_a_batch_item_with_a_bad_account_id_is_refused_alone(wallet: Wallet) -> None:
    account, _grant, _hold = _setup(wallet)
    results = wallet.charge_batch(
        [
            ChargeItem(account, 1_000, "b1"),
            ChargeItem(2**64, 1_000, "b2"),
            ChargeItem(account + 0.5, 1_000, "b3"),  # type: ignore[arg-type]
            ChargeItem(account, 1_000, "b4", lines=[float("nan")]),
            ChargeItem(account, 2_000, "b5"),
        ],
        now=T0,
    )
    assert [type(r).__name__ for r in results] == [
        "ChargeResult",
        "InvalidRequestError",
        "InvalidRequestError",
        "InvalidRequestError",
        "ChargeResult",
    ]
    assert wallet.verify() == []


@pytest.mark.parametrize(
    "now", [datetime(2026, 4, 1), "2026-04-01", datetime(9500, 1, 1, tzinfo=UTC)]
)
def test_the_cycle_and_the_recharge_job_refuse_a_bad_now(engine: sa.Engine, now: object) -> None:
    from talktime.wallet.cycle import run_cycle
    from talktime.wallet.payments import TestProvider
    from talktime.wallet.recharge import process_recharges

    with pytest.raises(InvalidRequestError):
        run_cycle(engine, now)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        process_recharges(engine, TestProvider(), now)  # type: ignore[arg-type]
