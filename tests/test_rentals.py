"""Phone-number rentals: adding, listing, releasing, suspending and the schema migration 0003."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from talktime.store import upgrade
from talktime.store.migrate import alembic_config
from talktime.wallet import AccountNotFoundError, InsufficientCreditError
from talktime.wallet import rentals as rn
from wallet_helpers import PLAN, make_wallet

D = 1_000_000


def add(conn: sa.Connection, account: int, e164: str = "+14155550100", price: int = D) -> int:
    return rn.add_number(
        conn,
        account,
        e164,
        country="us",
        number_type="local",
        monthly_price=price,
        rate_ref="numbers-2026-01:US:local",
        now=5,
        sms_enabled=True,
    ).id


def test_a_rented_number_keeps_its_price_rate_and_capabilities(engine: sa.Engine) -> None:
    account = make_wallet(engine).create_account("acme", PLAN, "c").account.id
    with engine.begin() as conn:
        number = rn.get_number(conn, account, add(conn, account))
    assert (number.e164, number.country, number.number_type) == ("+14155550100", "US", "local")
    assert (number.sms_enabled, number.voice_enabled, number.status) == (True, True, "active")
    assert (number.monthly_price, number.rate_ref) == (D, "numbers-2026-01:US:local")


def test_a_number_held_by_an_account_cannot_be_rented_again_until_released(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    first = wallet.create_account("acme", PLAN, "a").account.id
    second = wallet.create_account("other", PLAN, "b").account.id
    with engine.begin() as conn:
        number_id = add(conn, first)
    with engine.begin() as conn, pytest.raises(rn.NumberInUseError):
        add(conn, second)
    with engine.begin() as conn:
        released = rn.release_number(conn, first, number_id, now=9)
        assert released.status == "released"
        assert rn.release_number(conn, first, number_id, now=10).released_at == released.released_at
        add(conn, second)
        assert [n.status for n in rn.list_numbers(conn, first)] == ["released"]
        assert [n.account_id for n in rn.list_numbers(conn, second, "active")] == [second]


def test_suspend_and_reactivate(engine: sa.Engine) -> None:
    account = make_wallet(engine).create_account("acme", PLAN, "c").account.id
    with engine.begin() as conn:
        number_id = add(conn, account)
        assert rn.suspend_number(conn, account, number_id, now=7)
        assert not rn.suspend_number(conn, account, number_id, now=8)  # already suspended
        assert rn.get_number(conn, account, number_id).status == "suspended"
        assert rn.reactivate_number(conn, account, number_id).status == "active"
        rn.release_number(conn, account, number_id, now=9)
        with pytest.raises(rn.InvalidNumberError, match="released"):
            rn.reactivate_number(conn, account, number_id)


@pytest.mark.parametrize(
    ("e164", "price", "rate", "match"),
    [
        ("4155550100", D, "r", "E.164"),
        ("+14155550100", -1, "r", "monthly price"),
        ("+14155550100", D, "", "rate_ref"),
    ],
)
def test_bad_rentals_are_refused_and_store_nothing(
    engine: sa.Engine, e164: str, price: int, rate: str, match: str
) -> None:
    account = make_wallet(engine).create_account("acme", PLAN, "c").account.id
    with engine.begin() as conn:
        with pytest.raises(rn.InvalidNumberError, match=match):
            rn.add_number(
                conn,
                account,
                e164,
                country="US",
                number_type="local",
                monthly_price=price,
                rate_ref=rate,
                now=1,
            )
        assert rn.list_numbers(conn, account) == []


def test_unknown_account_and_number_are_refused(engine: sa.Engine) -> None:
    make_wallet(engine)
    with engine.begin() as conn:
        with pytest.raises(AccountNotFoundError):
            add(conn, 999)
        with pytest.raises(rn.NumberNotFoundError):
            rn.get_number(conn, 999, 1)


def test_recharge_migration_downgrades_and_upgrades_again(engine: sa.Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    names = set(sa.inspect(engine).get_table_names())
    assert not names & {"phone_numbers", "recharges", "recharge_settings", "cycle_runs"}
    upgrade(engine)
    assert {"phone_numbers", "recharges", "recharge_settings", "cycle_runs"} <= set(
        sa.inspect(engine).get_table_names()
    )


def test_rent_number_adds_it_and_charges_the_first_month_together(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", PLAN, "c").account.id
    with wallet.book() as book:
        number, charge = rn.rent_number(
            book,
            account,
            "+14155550100",
            "rent-1",
            country="US",
            number_type="local",
            monthly_price=D,
            rate_ref="numbers-2026-01:US:local",
        )
    assert charge is not None
    assert (charge.amount, charge.reference) == (D, "number:+14155550100")
    with wallet.book() as book:
        again, replay = rn.rent_number(
            book,
            account,
            "+14155550100",
            "rent-1",
            country="US",
            number_type="local",
            monthly_price=D,
            rate_ref="numbers-2026-01:US:local",
        )
    assert again.id == number.id
    assert replay is not None
    assert replay.replayed
    assert replay.transaction_id == charge.transaction_id
    assert wallet.balance(account).free == 9 * D


def test_rent_number_without_credit_adds_nothing(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "free", "c").account.id
    with pytest.raises(InsufficientCreditError), wallet.book() as book:
        rn.rent_number(
            book,
            account,
            "+14155550100",
            "rent-1",
            country="US",
            number_type="local",
            monthly_price=D,
            rate_ref="r",
        )
    with engine.connect() as conn:
        assert rn.list_numbers(conn, account) == []
