"""`verify` names the account of every kind of breach, each made by direct SQL on a database
after realistic use (charges, holds settled short and long, a pending hold, a refund, a closed
period), and finds that database clean before it is touched. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from talktime.wallet import Breach, Wallet, verify
from talktime.wallet.cycle import run_cycle
from talktime.wallet.periods import to_micros
from wallet_helpers import FREE, PLAN, T0

END = T0 + timedelta(days=40)
"""After the first period ended and the cycle ran (T0's period is March 2026)."""


@dataclass(frozen=True)
class Used:
    """The database after realistic use, and who owns what in it."""

    wallet: Wallet
    engine: sa.Engine
    acme: int
    other: int
    pending_hold: int


@pytest.fixture
def used(engine: sa.Engine) -> Iterator[Used]:
    clock = [T0]
    wallet = Wallet(engine, clock=lambda: clock[0])
    wallet.upsert_plan(PLAN, FREE)
    other = wallet.create_account("Other", PLAN, "create-other").account.id
    acme = wallet.create_account("Acme", PLAN, "create-acme").account.id
    bought = wallet.grant(acme, "purchased", 20_000_000, "buy").grant.id
    wallet.grant(acme, "promotional", 1_000_000, "promo", expires_at=T0 + timedelta(days=5))
    wallet.charge(acme, 8_000_000, "use", reference="msg_1")
    wallet.charge(acme, 300_000, "use-small", reference="msg_1b")
    wallet.charge(other, 300_000, "other-use", reference="msg_2")
    short = wallet.authorize(acme, 500_000, "auth-1", timedelta(minutes=5), reference="call_1")
    wallet.settle(short.hold.id, 200_000, "settle-1")
    wallet.refund(acme, bought, 1_000_000, "refund")
    clock[0] = T0 + timedelta(days=10)
    wallet.expire_grants()  # the promotional credit left
    run_cycle(engine, END)  # March's free credit expires, April's is issued
    clock[0] = END
    wallet.charge(acme, 11_000_000, "use-2", reference="msg_3")  # April's free, then paid
    pending = wallet.authorize(acme, 400_000, "auth-2", timedelta(hours=1), reference="call_2")
    long = wallet.authorize(other, 100_000, "auth-3", timedelta(hours=1), reference="call_3")
    wallet.settle(long.hold.id, FREE * 2, "settle-3")  # more than the credit: uncollected
    assert [str(b) for b in wallet.verify(END)] == []
    yield Used(wallet, engine, acme, other, pending.hold.id)
    wallet.close()


def _breaches(used: Used, corrupt: Callable[[sa.Connection, Used], None]) -> list[Breach]:
    """The breaches verify finds after ``corrupt`` ran, in a transaction rolled back after."""
    with used.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
            conn.commit()
        transaction = conn.begin()
        try:
            if not sqlite:  # the constraints come back with the rollback
                checks = conn.exec_driver_sql(
                    "SELECT conrelid::regclass::text, conname FROM pg_constraint "
                    "WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
                ).all()
                for table, name in checks:
                    conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            corrupt(conn, used)
            return verify(conn, to_micros(END))
        finally:
            transaction.rollback()
            if sqlite:
                conn.exec_driver_sql("PRAGMA ignore_check_constraints = OFF")
                conn.commit()


def _one(conn: sa.Connection, sql: str, **params: object) -> sa.Row:  # type: ignore[type-arg]
    row = conn.execute(sa.text(sql), params).first()
    assert row is not None, sql
    return row


def _run(conn: sa.Connection, sql: str, **params: object) -> None:
    assert conn.execute(sa.text(sql), params).rowcount >= 1, sql


def _acme_grant(conn: sa.Connection, used: Used, kind: str) -> int:
    return int(
        _one(
            conn,
            "SELECT id FROM grants WHERE account_id = :a AND kind = :k ORDER BY id DESC",
            a=used.acme,
            k=kind,
        ).id
    )


def remaining_off_by_one(conn: sa.Connection, used: Used) -> None:
    _run(
        conn,
        "UPDATE grants SET remaining = remaining + 1 WHERE id = :g",
        g=_acme_grant(conn, used, "purchased"),
    )


def entry_off_by_one(conn: sa.Connection, used: Used) -> None:
    last = _one(
        conn,
        "SELECT max(id) AS id FROM ledger WHERE account_id = :a AND kind = 'usage'",
        a=used.acme,
    )
    _run(conn, "UPDATE ledger SET amount = amount - 1 WHERE id = :e", e=last.id)


def negative_remaining(conn: sa.Connection, used: Used) -> None:
    grant = _acme_grant(conn, used, "promotional")  # spent and expired: 0 left
    _run(conn, "UPDATE grants SET remaining = -5 WHERE id = :g", g=grant)
    _run(
        conn,
        "INSERT INTO ledger (transaction_id, account_id, grant_id, amount, kind, created_at)"
        " VALUES ('t-neg', :a, :g, -5, 'usage', :at)",
        a=used.acme,
        g=grant,
        at=to_micros(END),
    )


def held_over_remaining(conn: sa.Connection, used: Used) -> None:
    alloc = _one(
        conn, "SELECT grant_id FROM hold_allocations WHERE hold_id = :h", h=used.pending_hold
    )
    _run(conn, "UPDATE grants SET held = remaining + 1 WHERE id = :g", g=alloc.grant_id)


def allocation_off_by_one(conn: sa.Connection, used: Used) -> None:
    _run(
        conn,
        "UPDATE hold_allocations SET amount = amount - 1 WHERE hold_id = :h",
        h=used.pending_hold,
    )


def settled_hold_still_reserving(conn: sa.Connection, used: Used) -> None:
    _run(conn, "UPDATE holds SET state = 'settled' WHERE id = :h", h=used.pending_hold)


def allocation_moved_to_another_hold(conn: sa.Connection, used: Used) -> None:
    # a second pending hold of the account takes over the first one's reservation
    amount = _one(conn, "SELECT amount FROM holds WHERE id = :h", h=used.pending_hold).amount
    _run(
        conn,
        "INSERT INTO holds (account_id, amount, state, expires_at, created_at)"
        " VALUES (:a, :amount, 'pending', :at, :at)",
        a=used.acme,
        amount=amount,
        at=to_micros(END) + 1,
    )
    new = _one(conn, "SELECT max(id) AS id FROM holds").id
    _run(
        conn,
        "UPDATE hold_allocations SET hold_id = :new WHERE hold_id = :h",
        new=new,
        h=used.pending_hold,
    )
    _run(conn, "UPDATE holds SET state = 'voided' WHERE id = :h", h=used.pending_hold)


def allocation_filed_under_another_account(conn: sa.Connection, used: Used) -> None:
    _run(
        conn,
        "UPDATE hold_allocations SET account_id = :o WHERE hold_id = :h",
        o=used.other,
        h=used.pending_hold,
    )


def old_free_credit_revived(conn: sa.Connection, used: Used) -> None:
    # March's expired free credit put back (its expiry entry gone) and made to last a year
    expiry = _one(
        conn,
        "SELECT l.id, l.grant_id, l.amount FROM ledger l JOIN grants g ON"
        " g.id = l.grant_id WHERE l.account_id = :a AND l.kind = 'expiry' AND"
        " g.kind = 'free_monthly'",
        a=used.acme,
    )
    _run(conn, "DELETE FROM ledger WHERE id = :e", e=expiry.id)
    _run(
        conn,
        "UPDATE grants SET remaining = remaining - :amount,"
        " expires_at = expires_at + 31536000000000 WHERE id = :g",
        amount=expiry.amount,
        g=expiry.grant_id,
    )


def free_credit_never_expiring(conn: sa.Connection, used: Used) -> None:
    _run(
        conn,
        "UPDATE grants SET expires_at = NULL WHERE id = :g",
        g=_acme_grant(conn, used, "free_monthly"),
    )


def usage_relabelled_as_a_grant(conn: sa.Connection, used: Used) -> None:
    entry = _one(
        conn,
        "SELECT min(l.id) AS id FROM ledger l JOIN grants g ON g.id = l.grant_id"
        " WHERE l.account_id = :a AND l.kind = 'usage' AND g.kind = 'free_monthly'",
        a=used.acme,
    )
    _run(conn, "UPDATE ledger SET kind = 'grant' WHERE id = :e", e=entry.id)


def usage_turned_into_credit(conn: sa.Connection, used: Used) -> None:
    # a free-credit usage entry made positive and the grant raised to match: money from nowhere
    entry = _one(
        conn,
        "SELECT l.id, l.grant_id, l.amount FROM ledger l JOIN grants g ON"
        " g.id = l.grant_id WHERE l.account_id = :a AND l.kind = 'usage' AND"
        " g.kind = 'free_monthly' AND g.remaining - 2 * l.amount <= g.original"
        " ORDER BY l.id DESC",
        a=used.acme,
    )
    _run(conn, "UPDATE ledger SET amount = -amount WHERE id = :e", e=entry.id)
    _run(
        conn,
        "UPDATE grants SET remaining = remaining - 2 * :amount WHERE id = :g",
        amount=entry.amount,
        g=entry.grant_id,
    )


def original_raised(conn: sa.Connection, used: Used) -> None:
    _run(
        conn,
        "UPDATE grants SET original = original + 1 WHERE id = :g",
        g=_acme_grant(conn, used, "purchased"),
    )


def uncollected_made_positive(conn: sa.Connection, used: Used) -> None:
    _run(conn, "UPDATE ledger SET amount = -amount WHERE kind = 'uncollected'")


def hold_entry_without_its_hold(conn: sa.Connection, used: Used) -> None:
    _run(
        conn,
        "UPDATE ledger SET hold_id = NULL WHERE kind = 'hold' AND hold_id = :h",
        h=used.pending_hold,
    )


def refund_of_free_credit(conn: sa.Connection, used: Used) -> None:
    entry = _one(
        conn,
        "SELECT l.id FROM ledger l JOIN grants g ON g.id = l.grant_id"
        " WHERE l.account_id = :a AND l.kind = 'usage' AND g.kind = 'free_monthly'"
        " ORDER BY l.id DESC",
        a=used.acme,
    )
    _run(conn, "UPDATE ledger SET kind = 'refund' WHERE id = :e", e=entry.id)


def usage_counter_off_by_one(conn: sa.Connection, used: Used) -> None:
    _run(
        conn,
        "UPDATE usage_periods SET paid_used = paid_used + 1 WHERE account_id = :a",
        a=used.acme,
    )


def usage_counter_lost(conn: sa.Connection, used: Used) -> None:
    """The counters gone while the ledger still shows paid usage (April's $1 of paid credit):
    found among the ledger's sums no counter row took away."""
    _run(conn, "DELETE FROM usage_periods WHERE account_id = :a", a=used.acme)


def one_key_charged_twice(conn: sa.Connection, used: Used) -> None:
    """The second charge's entries filed under the first charge's key: one key, two charges."""
    _run(
        conn,
        "UPDATE ledger SET idempotency_key = 'use' WHERE account_id = :a"
        " AND idempotency_key = 'use-small' AND kind = 'usage'",
        a=used.acme,
    )


def priced_line_without_its_rate(conn: sa.Connection, used: Used) -> None:
    entry = _one(
        conn,
        "SELECT id FROM ledger WHERE account_id = :a AND kind = 'usage' ORDER BY id DESC",
        a=used.acme,
    )
    _run(conn, """UPDATE ledger SET lines = '[{"kind": "sms"}]' WHERE id = :e""", e=entry.id)


def free_credit_without_a_period(conn: sa.Connection, used: Used) -> None:
    """A free monthly grant as a hand-made one would be: no period, no expiry."""
    _run(
        conn,
        "UPDATE grants SET period_start = NULL, expires_at = NULL WHERE id = :g",
        g=_acme_grant(conn, used, "free_monthly"),
    )


CORRUPTIONS = {
    remaining_off_by_one: "ledger_balance_mismatch",
    entry_off_by_one: "ledger_balance_mismatch",
    negative_remaining: "negative_balance",
    held_over_remaining: "over_reserved",
    allocation_off_by_one: "hold_allocations_mismatch",
    settled_hold_still_reserving: "allocation_on_closed_hold",
    allocation_moved_to_another_hold: "ledger_hold_mismatch",
    allocation_filed_under_another_account: "allocation_account_mismatch",
    old_free_credit_revived: "free_credit_outside_its_period",
    free_credit_never_expiring: "free_credit_outside_its_period",
    usage_relabelled_as_a_grant: "issue_mismatch",
    usage_turned_into_credit: "entry_sign",
    original_raised: "issue_mismatch",
    uncollected_made_positive: "entry_sign",
    hold_entry_without_its_hold: "hold_entry_without_hold",
    refund_of_free_credit: "refund_of_unbought_credit",
    usage_counter_off_by_one: "usage_counter_mismatch",
    usage_counter_lost: "usage_counter_mismatch",
    one_key_charged_twice: "key_charged_twice",
    priced_line_without_its_rate: "line_without_rate",
    free_credit_without_a_period: "free_credit_without_period",
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=lambda f: f.__name__)
def test_verify_names_the_account_of_each_breach(
    used: Used, corrupt: Callable[[sa.Connection, Used], None]
) -> None:
    breaches = _breaches(used, corrupt)
    account = used.other if corrupt is uncollected_made_positive else used.acme
    assert (account, CORRUPTIONS[corrupt]) in {(b.account_id, b.rule) for b in breaches}, breaches
    assert used.wallet.verify(END) == []  # rolled back: clean again


def test_verify_states_amounts_as_decimal_strings_not_micro_units(used: Used) -> None:
    breaches = _breaches(used, remaining_off_by_one)
    [mismatch] = [b for b in breaches if b.rule == "ledger_balance_mismatch"]
    assert "holds 18.000001 but its entries sum to 18.0000" in mismatch.detail, mismatch


def test_a_key_used_again_after_the_purge_is_not_a_key_charged_twice(engine: sa.Engine) -> None:
    """Keys are kept 30 days; a purged key may then charge again, and verify stays clean."""
    clock = [T0]
    wallet = Wallet(engine, clock=lambda: clock[0])
    wallet.upsert_plan(PLAN, FREE)
    acme = wallet.create_account("Acme", PLAN, "create-acme").account.id
    wallet.grant(acme, "purchased", 20_000_000, "buy")
    first = wallet.charge(acme, 1_000_000, "k1")
    clock[0] = T0 + timedelta(days=31)
    assert wallet.purge_idempotency() >= 1
    again = wallet.charge(acme, 1_000_000, "k1")
    assert not again.replayed
    assert again.transaction_id != first.transaction_id
    assert [str(b) for b in wallet.verify()] == []
    wallet.close()
