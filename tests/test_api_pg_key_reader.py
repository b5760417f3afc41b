"""On PostgreSQL, API keys are looked up on the event loop on one asynchronous connection per
process, and in the thread pool whenever that connection cannot answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.api import auth, create_app
from talktime.api.pgkeys import AsyncKeyReader, async_key_reader_for
from talktime.config import Settings
from talktime.keys import InvalidApiKeyError, Principal
from talktime.store import make_engine

import apikit

ON_POSTGRESQL = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def _settings(url: str, path: Path) -> Settings:
    return Settings(
        database_url=url, admin_key=apikit.ADMIN_KEY, rate_cards_dir=str(path / "cards")
    )


@contextmanager
def _served(db_url: str, path: Path) -> Iterator[tuple[TestClient, apikit.Tenant, Any]]:
    """An in-process app with one account; its key reader, not yet connected."""
    with TestClient(create_app(_settings(db_url, path))) as client:
        tenant = apikit.tenant(client, number=None)
        yield client, tenant, client.app.state.async_key_reader  # type: ignore[attr-defined]


def _no_thread_pool(*_args: Any) -> Any:
    raise AssertionError("the key lookup went to the thread pool")


def test_only_postgresql_gets_an_async_key_reader(tmp_path: Path) -> None:
    assert async_key_reader_for(make_engine(f"sqlite:///{tmp_path / 'x.db'}")) is None
    assert async_key_reader_for(make_engine("sqlite://")) is None
    pg = async_key_reader_for(make_engine("postgresql+psycopg://u@127.0.0.1:1/x"))
    assert isinstance(pg, AsyncKeyReader)


@ON_POSTGRESQL
def test_keys_are_looked_up_on_one_connection_and_a_revoked_key_is_refused_at_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _served(db_url, tmp_path) as (client, tenant, reader):
        monkeypatch.setattr(auth, "_lookup", _no_thread_pool)
        for _ in range(5):
            assert client.get("/v1/balance", headers=tenant.auth).status_code == 200
        assert reader.opened == 1
        assert reader.connected
        wrong = {"Authorization": tenant.auth["Authorization"][:-2] + "xx"}
        assert client.get("/v1/balance", headers=wrong).status_code == 401
        key_id = client.get("/v1/keys", headers=tenant.auth).json()["keys"][0]["id"]
        assert client.delete(f"/v1/keys/{key_id}", headers=tenant.auth).status_code == 200
        refused = client.get("/v1/balance", headers=tenant.auth)  # nothing cached
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
        assert reader.opened == 1
    assert not reader.connected  # closed at shutdown


@ON_POSTGRESQL
def test_a_connection_the_server_dropped_sends_one_lookup_to_the_pool_then_a_new_one_opens(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _served(db_url, tmp_path) as (client, tenant, reader):
        assert client.get("/v1/balance", headers=tenant.auth).status_code == 200
        (state,) = reader._loops.values()  # the test client's one loop
        pid = state.conn.info.backend_pid
        pooled: list[str] = []
        real = auth._lookup

        def counted(engine: sa.Engine, token: str, admin: str | None) -> Any:
            pooled.append(token)
            return real(engine, token, admin)

        monkeypatch.setattr(auth, "_lookup", counted)
        killer = make_engine(db_url)
        with killer.connect() as conn:
            assert conn.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        assert client.get("/v1/balance", headers=tenant.auth).status_code == 200
        assert len(pooled) == 1
        assert not reader.connected
        assert client.get("/v1/balance", headers=tenant.auth).status_code == 200
        assert len(pooled) == 1
        assert reader.opened == 2


def test_a_reader_that_cannot_connect_hands_lookups_to_the_pool_and_refuses_without_one() -> None:
    reader = AsyncKeyReader(make_engine("postgresql+psycopg://u@127.0.0.1:1/x"))
    assert asyncio.run(reader.lookup("tt_abcdef_secret", None)) is None  # the pool answers
    admin = asyncio.run(reader.lookup(apikit.ADMIN_KEY, apikit.ADMIN_KEY))
    assert admin == Principal(key_id="settings", account_id=None, admin=True)
    for impossible in ("not-a-key", f"tt_{'a' * 33}_secret", "tt_ab\x00cd_secret"):
        with pytest.raises(InvalidApiKeyError):  # no stored key could match: no query
            asyncio.run(reader.lookup(impossible, None))
    assert reader.opened == 0
    assert reader.queries == 0


@ON_POSTGRESQL
def test_concurrent_lookups_go_out_together_on_one_connection_and_each_gets_its_own_answer(
    db_url: str, tmp_path: Path, engine: sa.Engine
) -> None:
    with TestClient(create_app(_settings(db_url, tmp_path))) as client:
        tenant = apikit.tenant(client, number=None)
    token, account = tenant.key, tenant.account_id
    wrong = token[:-2] + ("aa" if not token.endswith("aa") else "bb")
    reader = AsyncKeyReader(engine)

    async def lookups() -> list[Any]:
        try:
            tokens = [token if i % 4 else wrong for i in range(32)]
            return await asyncio.gather(
                *(reader.lookup(t, None) for t in tokens), return_exceptions=True
            )
        finally:
            await reader.close()

    answers = asyncio.run(lookups())
    for i, answer in enumerate(answers):
        if i % 4:
            assert isinstance(answer, Principal)
            assert answer.account_id == account
        else:
            assert isinstance(answer, InvalidApiKeyError)
    assert reader.opened == 1
    assert reader.queries < len(answers)  # several lookups a SELECT


@ON_POSTGRESQL
def test_lookups_from_several_loops_at_once_each_get_their_answer_on_their_own_connection(
    db_url: str, tmp_path: Path, engine: sa.Engine
) -> None:
    """A test client without its context manager runs each request on a loop of its own, from
    as many threads as call it: one loop's lookups never wait on another's."""
    with _served(db_url, tmp_path) as (_client, tenant, _reader):
        token, account = tenant.key, tenant.account_id
    reader = AsyncKeyReader(engine)
    start = threading.Barrier(8)

    async def lookups() -> list[Principal | None]:
        found = await asyncio.wait_for(
            asyncio.gather(*(reader.lookup(token, None) for _ in range(4))), timeout=30
        )
        await reader.close()
        return found

    def on_a_loop_of_its_own(_: int) -> list[Principal | None]:
        start.wait()
        return asyncio.run(lookups())

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [a for found in pool.map(on_a_loop_of_its_own, range(8)) for a in found]
    assert len(answers) == 32
    assert all(a is not None and a.account_id == account for a in answers)
    assert reader.opened == 8
