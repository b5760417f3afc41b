"""The hot path's shortcuts give exactly what the general code gives: the charge fingerprint and
the stored JSON of a charge result (both are persisted, so a change would break old keys), and
the one-key record lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from talktime.wallet.idempotency import charge_fingerprint, fingerprint, lookup
from talktime.wallet.model import Balances, ChargeResult, charge_json, to_json
from wallet_helpers import PLAN, make_wallet

amounts = st.integers(min_value=1, max_value=2**62)
references = st.none() | st.text(max_size=40)
lines = st.none() | st.lists(
    st.dictionaries(st.sampled_from(["rate", "card", "amount"]), st.text(max_size=8)), max_size=3
)


@given(amounts, references, lines)
def test_charge_fingerprint_equals_the_general_fingerprint(
    amount: int, reference: str | None, priced: object
) -> None:
    general = fingerprint("charge", {"amount": amount, "reference": reference, "lines": priced})
    assert charge_fingerprint("charge", amount, reference, priced) == general


@given(
    st.text(min_size=1, max_size=32),
    st.integers(min_value=1, max_value=2**40),
    st.integers(min_value=0, max_value=2**62),
    st.integers(min_value=0, max_value=2**62),
    st.integers(min_value=0, max_value=2**62),
    references,
    st.integers(min_value=0, max_value=10**9),
)
def test_charge_json_equals_the_canonical_json(
    transaction_id: str,
    account_id: int,
    amount: int,
    free: int,
    held: int,
    reference: str | None,
    seconds: int,
) -> None:
    result = ChargeResult(
        transaction_id=transaction_id,
        account_id=account_id,
        amount=amount,
        from_free=free,
        from_paid=amount,
        balance=Balances(free=free, paid=amount, held=held, available=free + amount - held),
        reference=reference,
        created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=7),
    )
    assert charge_json(result) == to_json(result)


def test_one_key_lookup_finds_what_the_many_key_lookup_finds(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = wallet.create_account("Acme", PLAN, "create").account.id
    wallet.charge(account, 1_000, "first", reference="m1")
    wallet.charge(account, 2_000, "second", reference="m2")
    with engine.connect() as conn:
        many = lookup(conn, account, ["first", "second", "never"])
        for key in ("first", "second", "never"):
            assert lookup(conn, account, [key]) == {k: v for k, v in many.items() if k == key}
    assert set(many) == {"first", "second"}
    assert many["first"][0] == "charge"
