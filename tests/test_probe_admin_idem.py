"""Admin grants and account changes keep their answer in `api_requests`, like the tenant routes:
one record per (account, key) decides replay or conflict for both, in the transaction of the
work, apart from the account's clients' keys; records of the earlier scheme (the wallet's
`{key}:answer` and `admin-grant:{key}`) still replay. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from talktime.service import admin as service
from talktime.service.errors import RequestConflictError
from talktime.store.api_tables import api_requests
from talktime.store.wallet_tables import idempotency

import apikit
from apikit import ADMIN, tenant

GRANT = {"kind": "promotional", "amount": "1.00"}


def _grant(api: Any, account_id: int, key: str, body: dict[str, Any] = GRANT) -> Any:
    return api.post(
        f"/v1/admin/accounts/{account_id}/grants",
        json=body,
        headers={**ADMIN, "Idempotency-Key": key},
    )


def _patch(api: Any, account_id: int, body: dict[str, Any], key: str) -> Any:
    return api.patch(
        f"/v1/admin/accounts/{account_id}", json=body, headers={**ADMIN, "Idempotency-Key": key}
    )


def _account(api: Any, account_id: int) -> dict[str, Any]:
    response = api.get(f"/v1/admin/accounts/{account_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _records(api: Any, account_id: int) -> list[tuple[str, str]]:
    with api.app.state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(api_requests.c.key, api_requests.c.operation)
            .where(api_requests.c.account_id == account_id)
            .order_by(api_requests.c.key)
        )
        return [(r.key, r.operation) for r in rows]


# ---- one record per (account, key), whichever route commits first ------------------------------


def test_a_grant_and_an_account_change_share_one_answer_record_per_key(api: Any) -> None:
    t = tenant(api, number=None)
    assert _grant(api, t.account_id, "g-1").status_code == 201
    assert _patch(api, t.account_id, {"status": "past_due"}, "p-1").status_code == 200
    assert ("admin\ng-1", service.GRANT_CREDIT) in _records(api, t.account_id)
    assert ("admin\np-1", service.UPDATE_ACCOUNT) in _records(api, t.account_id)
    with api.app.state.engine.connect() as conn:  # the old answer record is written no more
        old = conn.execute(sa.select(idempotency.c.key).where(idempotency.c.key.like("%:answer")))
        assert old.all() == []


@pytest.mark.parametrize("first", ["grant", "patch"])
def test_whichever_admin_route_commits_a_key_first_wins_and_the_other_is_refused(
    api: Any, first: str
) -> None:
    t = tenant(api, number=None)
    key = f"both-{first}"
    if first == "grant":
        won = _grant(api, t.account_id, key)
        before = _account(api, t.account_id)
        lost = _patch(api, t.account_id, {"status": "canceled"}, key)
    else:
        won = _patch(api, t.account_id, {"status": "past_due"}, key)
        before = _account(api, t.account_id)
        lost = _grant(api, t.account_id, key)
    assert won.status_code in (200, 201), won.text
    assert (lost.status_code, lost.json()["code"]) == (409, "idempotency_conflict")
    assert lost.json()["idempotency_key"] == key
    assert "admin\n" not in lost.text
    assert _account(api, t.account_id) == before
    assert len([k for k, _ in _records(api, t.account_id) if k == f"admin\n{key}"]) == 1


@pytest.mark.postgres
def test_a_grant_racing_an_account_change_with_one_key_is_refused_once_the_change_committed(
    api: Any, db_url: str
) -> None:
    """The grant used to look for the change's answer before its transaction: a change
    committed after that look and before the grant was not seen, and both were applied."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    t = tenant(api, number=None)
    before = t.balance()
    engine, settings = api.app.state.engine, api.app.state.settings
    results: dict[str, Any] = {}

    def run(name: str, call: Any) -> None:
        try:
            results[name] = call()
        except RequestConflictError as exc:
            results[name] = exc

    def waiting() -> int:
        with engine.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return int(conn.execute(sa.text(query)).scalar_one())

    def until(count: int) -> None:
        deadline = time.monotonic() + 10
        while waiting() < count:
            assert time.monotonic() < deadline, "the request never waited for the lock"
            time.sleep(0.02)

    patch = threading.Thread(
        target=run,
        args=(
            "patch",
            lambda: service.update_account(
                engine, settings, t.account_id, "race", status="past_due"
            ),
        ),
    )
    grant = threading.Thread(
        target=run,
        args=(
            "grant",
            lambda: service.grant_credit(engine, t.account_id, "promotional", 1_000_000, "race"),
        ),
    )
    with engine.connect() as holder:  # holds the account's lock while both requests start
        holder.execute(
            sa.text("SELECT id FROM accounts WHERE id = :id FOR UPDATE"), {"id": t.account_id}
        )
        patch.start()
        until(1)
        grant.start()
        until(2)
        holder.commit()  # the change goes first (it queued first), then the grant
    patch.join(10)
    grant.join(10)
    assert results["patch"].status == 200
    assert isinstance(results["grant"], RequestConflictError), results["grant"]
    assert results["grant"].extra.get("idempotency_key") == "race"
    assert t.balance() == before  # nothing granted
    assert _account(api, t.account_id)["status"] == "past_due"


# ---- apart from the account's clients' keys -----------------------------------------------------


def test_an_admin_key_and_a_tenant_key_of_one_account_are_different_requests(
    paying: Any,
) -> None:
    """The same string sent by the account's API client and by an admin: each is its own
    request, replayed as itself, none refused as the other's."""
    t = tenant(paying, number=None)
    bought = t.post("/v1/credits", {"amount": "2.00"}, key="same")
    assert bought.status_code == 201, bought.text
    granted = _grant(paying, t.account_id, "same")
    assert granted.status_code == 201, granted.text
    other = t.post("/v1/credits", {"amount": "2.00"}, key="also")
    changed = _patch(paying, t.account_id, {"status": "active"}, "also")
    assert (other.status_code, changed.status_code) == (201, 200), changed.text
    again = t.post("/v1/credits", {"amount": "2.00"}, key="same")
    assert (again.status_code, again.content) == (201, bought.content)
    assert (_grant(paying, t.account_id, "same").content) == granted.content
    assert t.balance()["paid"] == "4.0000"


@pytest.mark.parametrize("suffix", ["answer", "status"])
def test_an_admin_key_never_meets_a_tenant_messages_wallet_key(api: Any, suffix: str) -> None:
    """An admin key `sms:y` made the wallet records `sms:y:answer` and `sms:y:status`, which
    are those of a message sent under `y:answer` / `y:status`: the admin's change or grant
    was refused 409 after such a message, and such a message after the admin's change."""
    t = tenant(api, credit="5.00")
    sms = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
    sent = t.post("/v1/messages", sms, key=f"y:{suffix}")
    assert sent.status_code == 201, sent.text
    changed = _patch(api, t.account_id, {"status": "past_due"}, "sms:y")
    assert changed.status_code == 200, changed.text
    granted = _grant(api, t.account_id, "sms:z")
    assert granted.status_code == 201, granted.text
    assert _patch(api, t.account_id, {"status": "active"}, "sms:w").status_code == 200
    later = t.post("/v1/messages", sms, key=f"w:{suffix}")
    assert later.status_code == 201, later.text
    again = t.post("/v1/messages", sms, key=f"y:{suffix}")
    assert (again.status_code, again.content) == (201, sent.content)


@pytest.mark.parametrize("key", ["admin\nk", "a\rb", "a\x00b"])
def test_a_tenant_key_holding_a_line_break_or_nul_is_refused_and_buys_nothing(
    paying: Any, key: str
) -> None:
    """HTTP never carries CR, LF or NUL in a header; refusing them keeps a tenant's key from
    ever being an admin's record key (`admin` + LF + key)."""
    t = tenant(paying, number=None)
    response = t.post("/v1/credits", {"amount": "2.00"}, key=key)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    assert response.json()["field"] == "Idempotency-Key"
    assert t.balance()["paid"] == "0.0000"


# ---- records of the earlier scheme ---------------------------------------------------------------


def _to_old_scheme(api: Any, account_id: int, key: str, *, answer: bool) -> None:
    """Turn the record of an admin request made under ``key`` into the earlier scheme's: the
    account change's answer as the wallet's `{key}:answer`, a grant by its wallet key only."""
    with api.app.state.engine.begin() as conn:
        where = (api_requests.c.account_id == account_id) & (api_requests.c.key == f"admin\n{key}")
        row = conn.execute(sa.select(api_requests).where(where)).one()
        conn.execute(sa.delete(api_requests).where(where))
        if answer:
            conn.execute(
                idempotency.insert().values(
                    account_id=account_id,
                    key=f"{key}:answer",
                    operation=row.operation,
                    fingerprint=row.fingerprint,
                    response=row.response,
                    created_at=row.created_at,
                )
            )


def test_an_account_change_answered_before_the_upgrade_replays_its_answer_and_applies_nothing(
    api: Any,
) -> None:
    apikit.import_tiny_card(api)
    t = tenant(api, number=None)
    first = _patch(
        api, t.account_id, {"status": "past_due", "rate_card": "tiny", "plan": "trial"}, "old-p"
    )
    assert first.status_code == 200, first.text
    _to_old_scheme(api, t.account_id, "old-p", answer=True)
    assert (
        _patch(
            api,
            t.account_id,
            {"status": "active", "rate_card": "default", "plan": "startup"},
            "new",
        ).status_code
        == 200
    )
    now = _account(api, t.account_id)
    again = _patch(
        api, t.account_id, {"status": "past_due", "rate_card": "tiny", "plan": "trial"}, "old-p"
    )
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _account(api, t.account_id) == now  # neither the status nor the card went back
    other = _patch(api, t.account_id, {"status": "canceled"}, "old-p")
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    grant = _grant(api, t.account_id, "old-p")
    assert (grant.status_code, grant.json()["code"]) == (409, "idempotency_conflict")
    assert _account(api, t.account_id) == now


def test_a_grant_made_before_the_upgrade_replays_and_grants_nothing_again(api: Any) -> None:
    t = tenant(api, number=None)
    first = _grant(api, t.account_id, "old-g")
    assert first.status_code == 201, first.text
    _to_old_scheme(api, t.account_id, "old-g", answer=False)
    before = _account(api, t.account_id)
    again = _grant(api, t.account_id, "old-g")
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _grant(api, t.account_id, "old-g", {"kind": "promotional", "amount": "2.00"})
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    change = _patch(api, t.account_id, {"status": "canceled"}, "old-g")
    assert (change.status_code, change.json()["code"]) == (409, "idempotency_conflict")
    assert _account(api, t.account_id) == before


def test_concurrent_grants_with_one_key_grant_once_and_answer_alike(api: Any) -> None:
    t = tenant(api, number=None)
    engine = api.app.state.engine
    answers: list[Any] = []
    start = threading.Barrier(4)

    def grant() -> None:
        start.wait()
        answers.append(service.grant_credit(engine, t.account_id, "purchased", 1_000_000, "same"))

    threads = [threading.Thread(target=grant) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 4
    assert len({a.body for a in answers}) == 1
    assert sorted(a.replayed for a in answers) == [False, True, True, True]
    assert t.balance()["paid"] == "1.0000"


def test_a_status_change_made_before_answers_were_stored_replays_without_applying_again(
    api: Any,
) -> None:
    """Such a change left only its wallet record `{key}:status`: a replay answers the account
    as it is now (documented), and neither changes the status back nor issues credit."""
    t = tenant(api, number=None)
    assert _patch(api, t.account_id, {"status": "canceled"}, "pre-1").status_code == 200
    _to_old_scheme(api, t.account_id, "pre-1", answer=False)
    with api.app.state.engine.begin() as conn:
        conn.execute(
            sa.update(idempotency)
            .where(idempotency.c.account_id == t.account_id)
            .where(idempotency.c.key == "admin-status:pre-1")
            .values(key="pre-1:status")
        )
    assert _patch(api, t.account_id, {"status": "active"}, "pre-2").status_code == 200
    now = _account(api, t.account_id)
    again = _patch(api, t.account_id, {"status": "canceled"}, "pre-1")
    assert again.status_code == 200, again.text
    assert _account(api, t.account_id) == now  # still active, no new credit
    assert again.json()["status"] == "active"
    assert _patch(api, t.account_id, {"status": "canceled"}, "pre-1").content == again.content


def test_an_account_created_with_credit_under_an_admin_key_never_meets_a_tenant_message_key(
    api: Any,
) -> None:
    """The starting credit was granted under the wallet key `<key>:credit`: an account created
    under `sms:y` refused every message sent under `y:credit` (409, naming `sms:y:credit`)."""
    body = {"name": "Ada Ltd", "plan": "startup", "credit": "5.00"}
    created = api.post(
        "/v1/admin/accounts", json=body, headers={**ADMIN, "Idempotency-Key": "sms:y"}
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    made = api.post(f"/v1/admin/accounts/{account_id}/keys", json={}, headers=ADMIN)
    t = apikit.Tenant(api, account_id, made.json()["key"], "")
    t.user = api.post("/v1/users", json={"name": "Ada"}, headers=t.auth).json()["id"]
    number = t.post("/v1/numbers", {"e164": "+14155550100"})
    assert number.status_code == 201, number.text
    sms = {"from": "+14155550100", "to": "+14155550111", "text": "hi", "user": t.user}
    sent = t.post("/v1/messages", sms, key="y:credit")
    assert sent.status_code == 201, sent.text
    again = api.post("/v1/admin/accounts", json=body, headers={**ADMIN, "Idempotency-Key": "sms:y"})
    assert (again.status_code, again.json()["id"]) == (201, account_id)
    assert t.balance()["paid"] == "5.0000"  # granted once (the free credit paid the rest)


# ---- a derived record is never another key's old record ------------------------------------------


@pytest.mark.parametrize(
    ("first", "then"),
    [("status", "admin-status"), ("P:status", "admin-status:P")],
)
def test_a_key_shaped_like_another_keys_status_record_changes_the_status(
    api: Any, first: str, then: str
) -> None:
    """Key `status` leaves the wallet record `admin-status:status`, which is what a PATCH made
    before answers were stored would have left for the key `admin-status`: a later PATCH under
    `admin-status` was answered 200 (stored, so every replay repeated it) with the account as
    it was, changing nothing."""
    t = tenant(api, number=None)
    assert _patch(api, t.account_id, {"status": "past_due"}, first).status_code == 200
    assert _patch(api, t.account_id, {"status": "active"}, "between").status_code == 200
    changed = _patch(api, t.account_id, {"status": "past_due"}, then)
    assert changed.status_code == 200, changed.text
    assert "Idempotent-Replayed" not in changed.headers
    assert changed.json()["status"] == "past_due"
    assert _account(api, t.account_id)["status"] == "past_due"
    again = _patch(api, t.account_id, {"status": "past_due"}, then)
    assert (again.content, again.headers["Idempotent-Replayed"]) == (changed.content, "true")


@pytest.mark.parametrize("plan", ["startup", "business"])
def test_a_key_shaped_like_another_keys_plan_record_changes_the_plan(api: Any, plan: str) -> None:
    """The same with `plan` then `admin-plan`: the plan did not change (200), or, with another
    plan than the first key's, a key never used was refused 409."""
    t = tenant(api, number=None)
    assert _patch(api, t.account_id, {"plan": "startup"}, "plan").status_code == 200
    assert _patch(api, t.account_id, {"plan": "professional"}, "between").status_code == 200
    changed = _patch(api, t.account_id, {"plan": plan}, "admin-plan")
    assert changed.status_code == 200, changed.text
    assert "Idempotent-Replayed" not in changed.headers
    assert changed.json()["plan"] == plan
    assert _account(api, t.account_id)["plan"] == plan


def test_an_old_status_change_under_a_key_shaped_like_a_derived_record_still_replays(
    api: Any,
) -> None:
    """A PATCH made before answers were stored under `admin-status:x` left `admin-status:x:status`,
    the record today's code would make for the key `x:status`: with no answer stored under
    `x:status` it is the old change's, and its replay applies nothing again."""
    t = tenant(api, number=None)
    old = "admin-status:x"
    assert _patch(api, t.account_id, {"status": "canceled"}, old).status_code == 200
    _to_old_scheme(api, t.account_id, old, answer=False)
    with api.app.state.engine.begin() as conn:
        renamed = conn.execute(
            sa.update(idempotency)
            .where(idempotency.c.account_id == t.account_id)
            .where(idempotency.c.key == f"admin-status:{old}")
            .values(key=f"{old}:status")
        )
        assert renamed.rowcount == 1
    assert _patch(api, t.account_id, {"status": "active"}, "later").status_code == 200
    now = _account(api, t.account_id)
    again = _patch(api, t.account_id, {"status": "canceled"}, old)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "active"
    assert _account(api, t.account_id) == now  # still active, no new credit


# ---- an account creation's key and its stored answer ---------------------------------------------


def _create(api: Any, key: str, body: dict[str, Any]) -> Any:
    return api.post("/v1/admin/accounts", json=body, headers={**ADMIN, "Idempotency-Key": key})


@pytest.mark.parametrize("first_answer_shaped", [False, True])
def test_a_creation_key_and_answer_colon_that_key_are_two_accounts(
    api: Any, first_answer_shaped: bool
) -> None:
    """The answer of a creation under `X` was kept as the wallet record `answer:X`, where a
    creation under the key `answer:X` keeps its account: whichever came second was refused 409
    though its key was never used."""
    body = {"name": "Keys Ltd", "plan": "startup"}
    keys = ["answer:X", "X"] if first_answer_shaped else ["X", "answer:X"]
    made = [_create(api, key, body) for key in keys]
    assert [m.status_code for m in made] == [201, 201], made[1].text
    assert made[0].json()["id"] != made[1].json()["id"]
    for key, first in zip(keys, made, strict=True):
        again = _create(api, key, body)
        assert (again.status_code, again.content) == (201, first.content)
        assert again.headers["Idempotent-Replayed"] == "true"


def test_an_account_created_with_its_answer_under_answer_colon_key_still_replays(
    api: Any,
) -> None:
    """Answers stored before 1 Dec are the wallet's `answer:<key>` (kept 30 days): a replay is
    still the original answer, another body under the key still 409, and the key `answer:<key>`
    is still a new account."""
    body = {"name": "Old Ltd", "plan": "startup", "credit": "2.00"}
    first = _create(api, "old-c", body)
    assert first.status_code == 201, first.text
    with api.app.state.engine.begin() as conn:
        moved = conn.execute(
            sa.update(idempotency)
            .where(idempotency.c.account_id == 0)
            .where(idempotency.c.key == "answer\nold-c")
            .values(key="answer:old-c")
        )
        assert moved.rowcount == 1
    again = _create(api, "old-c", body)
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _create(api, "old-c", {**body, "credit": "3.00"})
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    fresh = _create(api, "answer:old-c", body)
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["id"] != first.json()["id"]
    assert _create(api, "answer:old-c", body).content == fresh.content
    assert _account(api, first.json()["id"])["balance"]["paid"] == "2.0000"
