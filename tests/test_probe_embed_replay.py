"""Replays through the embedded `Wallet`: a grant whose times are given with another UTC offset
is the same request (the same instants), so its key replays the grant instead of answering
`idempotency_conflict` (before, the fingerprint held the times as written, offset included,
while account creation already compared its anchor as an instant)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from talktime.store.wallet_tables import idempotency
from talktime.wallet import IdempotencyConflictError, Wallet, to_json
from talktime.wallet.grants import _grant_fingerprint
from wallet_helpers import PLAN, make_wallet

PLUS2 = timezone(timedelta(hours=2))
EXPIRES = datetime(2026, 4, 1, tzinfo=UTC)
EFFECTIVE = datetime(2026, 3, 11, 6, 30, tzinfo=UTC)


@pytest.fixture
def wallet(engine: sa.Engine) -> Iterator[Wallet]:
    w = make_wallet(engine)
    yield w
    w.close()


@pytest.mark.parametrize("zone", [PLUS2, ZoneInfo("America/New_York"), ZoneInfo("UTC")])
def test_a_grant_replayed_with_the_same_instants_in_another_offset_returns_the_first_result(
    wallet: Wallet, zone: timezone | ZoneInfo
) -> None:
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    first = wallet.grant(
        account, "promotional", 1_000, "promo", expires_at=EXPIRES, effective_at=EFFECTIVE
    )
    again = wallet.grant(
        account,
        "promotional",
        1_000,
        "promo",
        expires_at=EXPIRES.astimezone(zone),
        effective_at=EFFECTIVE.astimezone(zone),
    )
    assert again.replayed
    assert to_json(again) == to_json(first)
    assert len(wallet.grants(account)) == 2  # the free credit and one promotion
    with pytest.raises(IdempotencyConflictError):
        wallet.grant(account, "promotional", 1_000, "promo", expires_at=EXPIRES + timedelta(1))
    assert wallet.verify() == []


def test_a_grant_stored_with_its_offset_before_the_change_still_replays(
    wallet: Wallet, engine: sa.Engine
) -> None:
    account = wallet.create_account("Acme", PLAN, "acct").account.id
    local = EXPIRES.astimezone(PLUS2)
    first = wallet.grant(account, "purchased", 2_000, "buy", expires_at=local)
    legacy = _grant_fingerprint("purchased", 2_000, local, None, None, None, utc=False)
    with engine.begin() as conn:  # the record as the earlier code wrote it
        conn.execute(
            sa.update(idempotency)
            .where(idempotency.c.account_id == account, idempotency.c.key == "buy")
            .values(fingerprint=legacy)
        )
    again = wallet.grant(account, "purchased", 2_000, "buy", expires_at=local)
    assert again.replayed
    assert to_json(again) == to_json(first)
    with pytest.raises(IdempotencyConflictError):
        wallet.grant(account, "purchased", 2_001, "buy", expires_at=local)
    assert [g.kind for g in wallet.grants(account)].count("purchased") == 1
