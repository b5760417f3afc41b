"""API keys: shown once, stored as a hash, found by prefix, revocable, account or admin."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from talktime import keys
from talktime.store.api_tables import api_keys
from talktime.store.wallet_tables import accounts, plans


def _account(conn: sa.Connection) -> int:
    conn.execute(plans.insert().values(name="basic", monthly_free_credit=0, updated_at=0))
    return int(
        conn.execute(
            accounts.insert()
            .values(name="a", plan="basic", anchor_at=0, period_start=0, period_end=1, created_at=0)
            .returning(accounts.c.id)
        ).scalar_one()
    )


def test_a_key_is_stored_only_as_a_hash_and_authenticates(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        account = _account(conn)
        new = keys.create_key(conn, account, name="ci")
    prefix, secret = new.token.split("_")[1:]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys)).one()
        assert secret not in str(tuple(stored))
        assert stored.prefix == prefix
        who = keys.authenticate(conn, new.token)
    assert who == keys.Principal(key_id=new.key.id, account_id=account, admin=False)


def test_wrong_unknown_malformed_and_revoked_keys_are_refused_alike(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        new = keys.create_key(conn, _account(conn))
        keys.create_key(conn, None, admin=True)
    prefix = new.token.split("_")[1]
    bad = [f"tt_{prefix}_wrong", "tt_000000000000_x", "nonsense", "", f"tt_{prefix}_"]
    with engine.begin() as conn:
        for token in bad:
            with pytest.raises(keys.InvalidApiKeyError):
                keys.authenticate(conn, token)
        keys.revoke_key(conn, new.key.id)
        with pytest.raises(keys.InvalidApiKeyError):
            keys.authenticate(conn, new.token)
        assert keys.list_keys(conn)[0].revoked_at is not None


def test_admin_keys_come_from_the_table_or_the_settings(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        new = keys.create_key(conn, None, admin=True)
        assert keys.authenticate(conn, new.token).admin
        assert keys.authenticate(conn, "from-settings", "from-settings").admin
        with pytest.raises(keys.InvalidApiKeyError):
            keys.authenticate(conn, "from-settingsX", "from-settings")


def test_an_account_cannot_revoke_another_accounts_key(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        account = _account(conn)
        other = int(
            conn.execute(
                accounts.insert()
                .values(
                    name="b", plan="basic", anchor_at=0, period_start=0, period_end=1, created_at=0
                )
                .returning(accounts.c.id)
            ).scalar_one()
        )
        new = keys.create_key(conn, account)
        with pytest.raises(keys.KeyNotFoundError):
            keys.revoke_key(conn, new.key.id, account_id=other)
        assert keys.list_keys(conn, other) == []
