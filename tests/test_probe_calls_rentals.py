"""Number rentals in the embedded wallet, found by probing; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime.wallet import rentals as rn
from wallet_helpers import make_wallet


def test_a_free_rental_replays_by_its_key(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("acme", "pro", "c").account.id
    terms = {"country": "US", "number_type": "local", "monthly_price": 0, "rate_ref": "r"}
    with wallet.book() as book:
        number, charge = rn.rent_number(book, account, "+14155550100", "rent-1", **terms)
    # Before, a replay of a number priced 0 was refused as number_in_use (no charge had
    # recorded the key).
    with wallet.book() as book:
        again, replayed = rn.rent_number(book, account, "+14155550100", "rent-1", **terms)
    assert (again.id, charge, replayed) == (number.id, None, None)
    with engine.connect() as conn:
        assert len(rn.list_numbers(conn, account)) == 1
    with pytest.raises(rn.NumberInUseError), wallet.book() as book:
        rn.rent_number(book, account, "+14155550100", "rent-2", **terms)  # a new key: held
    assert wallet.verify() == []
