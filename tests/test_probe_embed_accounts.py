"""Account creation through the embedded `Wallet`: a currency is three ASCII letters. Before,
any three Unicode letters passed: "ßab" became "SSAB" (four characters), which SQLite stored
and PostgreSQL refused with a raw DataError; "ééé" was stored as the currency "ÉÉÉ"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from talktime.wallet import InvalidRequestError, Wallet
from wallet_helpers import PLAN, make_wallet


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


def _account_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM accounts").scalar_one())


@pytest.mark.parametrize("currency", ["ßab", "ééé", "ＵＳＤ", "U$D", "US", 840])
def test_a_currency_that_is_not_three_ascii_letters_is_refused_and_creates_nothing(
    wallet: Wallet, engine: sa.Engine, currency: object
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        wallet.create_account("Acme", PLAN, "acct", currency=currency)  # type: ignore[arg-type]
    assert refused.value.code == "invalid_request"
    assert "ISO 4217" in refused.value.detail
    assert _account_count(engine) == 0
    # the key was not stored: the same key with a valid currency creates the account
    made = wallet.create_account("Acme", PLAN, "acct", currency="eur")
    assert (made.replayed, made.account.currency) == (False, "EUR")
