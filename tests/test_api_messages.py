"""POST /v1/messages and /v1/messages/inbound: policy, pricing, all-or-nothing charges,
idempotent replays; on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from talktime.store import make_engine
from talktime.store.api_tables import messages
from talktime.store.recharge_tables import recharges
from talktime.store.wallet_tables import outbox

import apikit
from apikit import ADMIN, Tenant, tenant


def _message_entries(t: Tenant) -> list[dict[str, Any]]:
    return [e for e in t.ledger(kind="usage") if (e["reference"] or "").startswith("msg_")]


def test_a_message_is_priced_charged_and_answered_with_its_lines(api: Any) -> None:
    t = tenant(api)
    response = t.sms("+14155550111", "hello")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("msg_")
    assert (body["encoding"], body["segments"]) == ("GSM-7", 1)
    assert (body["amount"], body["currency"]) == ("0.0100", "USD")
    assert body["lines"][0]["rate"].startswith("default@")
    assert body["balance"]["available"] == "0.9900"  # $2 free - $1 number - $0.01


def test_free_credit_is_used_before_paid_credit(api: Any) -> None:
    t = tenant(api, credit="5.00")
    body = t.sms("+14155550111").json()
    assert (body["from_free"], body["from_paid"]) == ("0.0100", "0.0000")
    assert body["balance"]["paid"] == "5.0000"


def test_a_replay_returns_the_original_response_byte_for_byte(api: Any) -> None:
    t = tenant(api)
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
    first = t.post("/v1/messages", body, key="k-1")
    again = t.post("/v1/messages", body, key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert len(_message_entries(t)) == 1


def test_the_same_key_with_another_request_is_a_conflict(api: Any) -> None:
    t = tenant(api)
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
    assert t.post("/v1/messages", body, key="k-2").status_code == 201
    response = t.post("/v1/messages", {**body, "text": "ho"}, key="k-2")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"


def test_the_idempotency_key_is_required(api: Any) -> None:
    t = tenant(api)
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
    response = api.post("/v1/messages", json=body, headers=t.auth)
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"


def test_short_credit_refuses_the_whole_message_and_debits_nothing(api: Any) -> None:
    apikit.import_tiny_card(api)
    t = tenant(api, plan="trial", rate_card="tiny", credit="1.05")  # $0.05 after the number
    before = t.ledger()
    response = t.sms("+14155550111", "x" * 1000)  # 7 segments: $0.07
    assert response.status_code == 402
    problem = response.json()
    assert problem["code"] == "insufficient_credit"
    assert (problem["needed"], problem["available"], problem["currency"]) == (
        "0.0700",
        "0.0500",
        "USD",
    )
    assert problem["request_id"] == response.headers["x-request-id"]
    assert t.ledger() == before
    assert t.balance()["available"] == "0.0500"
    # a refused key is not stored: after a top-up the same key succeeds
    apikit.grant(api, t.account_id, "1.00")
    body = {"from": t.number, "to": "+14155550111", "text": "x" * 1000, "user": t.user}
    assert t.post("/v1/messages", body, key="retry").status_code == 201


def test_the_monthly_limit_refuses_paid_usage_over_it(api: Any) -> None:
    apikit.import_tiny_card(api)
    t = tenant(api, plan="trial", rate_card="tiny", credit="2.00")
    response = api.put("/v1/settings/monthly-limit", json={"monthly_limit": "1.01"}, headers=t.auth)
    assert response.status_code == 200, response.text
    assert t.sms("+14155550111").status_code == 201  # $1 number + $0.01 = the limit
    refused = t.sms("+14155550111")
    assert refused.status_code == 402
    assert refused.json()["code"] == "monthly_limit_reached"


def test_mms_is_refused(api: Any) -> None:
    t = tenant(api)
    response = t.sms("+14155550111", media=["https://example.com/cat.png"])
    assert response.status_code == 422
    assert response.json()["code"] == "mms_not_supported"


def test_sms_across_countries_is_refused_but_us_canada_is_allowed(api: Any) -> None:
    t = tenant(api)
    refused = t.sms("+447400123456")
    assert refused.status_code == 422
    assert refused.json()["code"] == "sms_cross_country"
    assert t.sms("+16135550123").status_code == 201  # Ottawa, Canada


def test_a_number_not_of_the_account_or_not_sms_enabled_is_refused(api: Any) -> None:
    t = tenant(api)
    other = tenant(api, number="+14155550199")
    body = {"from": other.number, "to": "+14155550111", "text": "hi", "user": t.user}
    response = t.post("/v1/messages", body)
    assert response.status_code == 422
    assert response.json()["code"] == "number_not_sms_enabled"
    de = tenant(api, credit="10.00", number="+4915112345678")  # DE mobile: no SMS
    response = de.sms("+4915112345679")
    assert response.json()["code"] == "number_not_sms_enabled"
    released = api.delete(f"/v1/numbers/{t.number_id}", headers=t.auth)
    assert released.json()["status"] == "released"
    assert t.sms("+14155550111").json()["code"] == "number_not_sms_enabled"


def test_a_restricted_user_is_refused(api: Any) -> None:
    t = tenant(api)
    response = api.patch(f"/v1/users/{t.user}", json={"restrictions": ["sms.send"]}, headers=t.auth)
    assert response.status_code == 200, response.text
    refused = t.sms("+14155550111")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    viewer = api.post("/v1/users", json={"name": "V", "role": "viewer"}, headers=t.auth).json()
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": viewer["id"]}
    assert t.post("/v1/messages", body).json()["code"] == "permission_denied"


def test_an_unknown_user_is_refused(api: Any) -> None:
    t = tenant(api)
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": "usr_nobody"}
    response = t.post("/v1/messages", body)
    assert (response.status_code, response.json()["code"]) == (422, "unknown_user")


def test_an_inactive_subscription_is_refused(api: Any) -> None:
    t = tenant(api)
    apikit.set_status(api, t.account_id, "past_due")
    response = t.sms("+14155550111")
    assert (response.status_code, response.json()["code"]) == (403, "subscription_inactive")


def test_text_and_numbers_are_validated_with_the_field_named(api: Any) -> None:
    t = tenant(api)
    too_long = t.sms("+14155550111", "a" * 1601)
    assert (too_long.status_code, too_long.json()["code"]) == (422, "text_too_long")
    bad = t.post("/v1/messages", {"from": t.number, "to": "4155", "text": "x", "user": t.user})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "to"


def test_inbound_messages_are_free_on_the_default_card(api: Any) -> None:
    t = tenant(api)
    response = t.post(
        "/v1/messages/inbound", {"from": "+14155550111", "to": t.number, "text": "hey"}
    )
    assert response.status_code == 201, response.text
    assert (response.json()["amount"], response.json()["status"]) == ("0.0000", "received")
    assert _message_entries(t) == []


def test_inbound_messages_are_charged_when_the_card_prices_them(api: Any) -> None:
    t = tenant(api, rate_card="passthrough")
    response = t.post(
        "/v1/messages/inbound", {"from": "+14155550111", "to": t.number, "text": "hey"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == "0.0100"  # $0.0083 rounded up to the cent
    assert len(_message_entries(t)) == 1


def test_a_priced_inbound_message_without_credit_is_refused_unrecorded_then_recorded_after_a_top_up(
    api: Any, db_url: str
) -> None:
    t = tenant(api, rate_card="passthrough")  # startup: $2.00 free, the first number $1.00
    second = t.post("/v1/numbers", {"e164": "+14155550101"})
    assert second.status_code == 201, second.text
    assert t.balance()["available"] == "0.0000"
    body = {"from": "+14155550111", "to": t.number, "text": "hey"}
    refused = t.post("/v1/messages/inbound", body, key="in-1")
    assert (refused.status_code, refused.json()["code"]) == (402, "insufficient_credit")
    assert (refused.json()["needed"], refused.json()["available"]) == ("0.0100", "0.0000")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            mine = messages.c.account_id == t.account_id
            assert conn.execute(sa.select(sa.func.count()).where(mine)).scalar() == 0
    finally:
        engine.dispose()
    assert _message_entries(t) == []
    apikit.grant(api, t.account_id, "1.00")
    recorded = t.post("/v1/messages/inbound", body, key="in-1")
    assert recorded.status_code == 201, recorded.text
    assert (recorded.json()["amount"], recorded.json()["from_paid"]) == ("0.0100", "0.0100")
    assert len(_message_entries(t)) == 1
    replay = t.post("/v1/messages/inbound", body, key="in-1")
    assert (replay.content, replay.headers["idempotent-replayed"]) == (recorded.content, "true")


def test_admin_endpoints_need_an_admin_key(api: Any) -> None:
    t = tenant(api)
    response = api.post("/v1/admin/accounts", json={"name": "x", "plan": "startup"}, headers=t.auth)
    assert (response.status_code, response.json()["code"]) == (403, "admin_required")
    assert api.get("/v1/balance").status_code == 401
    assert api.get("/v1/balance", headers={"Authorization": "Bearer tt_x_y"}).status_code == 401
    account_only = api.get("/v1/balance", headers=ADMIN)
    assert account_only.json()["code"] == "account_key_required"


def test_a_number_refused_by_the_monthly_limit_is_not_kept(api: Any) -> None:
    apikit.import_tiny_card(api)
    t = tenant(api, number=None, plan="trial", rate_card="tiny")  # no free credit
    apikit.grant(api, t.account_id, "5.00")
    limit = api.put("/v1/settings/monthly-limit", json={"monthly_limit": "0.50"}, headers=t.auth)
    assert limit.status_code == 200, limit.text
    refused = t.post("/v1/numbers", {"e164": "+14155550123"})  # first month: $1.00 > $0.50 left
    assert refused.status_code == 402, refused.text
    assert refused.json()["code"] == "monthly_limit_reached"
    numbers = api.get("/v1/numbers", headers=t.auth).json()["numbers"]
    assert numbers == []
    assert t.balance()["paid"] == "5.0000"


def test_sends_under_the_recharge_threshold_queue_one_recharge_and_keep_the_limit_event(
    api: Any, db_url: str
) -> None:
    """The statements a send runs through SQLAlchemy inside the writer's unit (the recharge
    check and insert, the outbox) see their results, on PostgreSQL's pipeline too."""
    apikit.import_tiny_card(api)
    t = tenant(api, plan="trial", rate_card="tiny", credit="1.50")  # $1 number: $0.50 left
    # not under $0.50 yet, so turning it on queues nothing: the send's own check queues it
    settings = {"enabled": True, "threshold": "0.50", "amount": "10.00"}
    response = api.put("/v1/settings/auto-recharge", json=settings, headers=t.auth)
    assert response.status_code == 200, response.text
    response = api.put("/v1/settings/monthly-limit", json={"monthly_limit": "1.02"}, headers=t.auth)
    assert response.status_code == 200, response.text
    assert t.sms("+14155550111").status_code == 201  # paid under the threshold: recharge queued
    assert t.sms("+14155550111").status_code == 201  # one is in flight: no second
    refused = t.sms("+14155550111")  # $1 number + 2 x $0.01 reached the limit
    assert refused.json()["code"] == "monthly_limit_reached"
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            queued = conn.execute(
                sa.select(recharges.c.state, recharges.c.amount).where(
                    recharges.c.account_id == t.account_id
                )
            ).all()
            events = conn.execute(
                sa.select(outbox.c.type).where(outbox.c.account_id == t.account_id)
            ).scalars()
            kinds = list(events)
    finally:
        engine.dispose()
    assert [(row.state, row.amount) for row in queued] == [("pending", 10_000_000)]
    assert kinds.count("monthly_limit.reached") == 1
    assert t.balance()["paid"] == "0.4800"


def test_a_replay_wins_over_what_the_send_would_answer_now_and_writes_nothing(
    api: Any, db_url: str
) -> None:
    """A key that answered once answers the same after the credit ran out and the account
    was canceled (its record is checked before any refusal), and nothing more is written."""
    t = tenant(api)
    body = {"from": t.number, "to": "+14155550111", "text": "hi", "user": t.user}
    first = t.post("/v1/messages", body, key="k-replay")
    assert first.status_code == 201, first.text
    drain = {"from": t.number, "to": "+14155550111", "text": "x" * 1600, "user": t.user}
    while t.post("/v1/messages", drain).status_code == 201:  # spend the rest of the credit
        pass
    assert t.sms("+14155550111").status_code == 402
    apikit.set_status(api, t.account_id, "canceled")  # the send itself is now refused early
    assert t.sms("+14155550111").json()["code"] == "subscription_inactive"
    before = t.balance()
    engine = make_engine(db_url)
    try:
        rows_before = _message_rows(engine, t.account_id)
        again = t.post("/v1/messages", body, key="k-replay")
        assert (again.status_code, again.content) == (201, first.content)
        conflict = t.post("/v1/messages", {**body, "text": "other"}, key="k-replay")
        assert conflict.json()["code"] == "idempotency_conflict"
        assert _message_rows(engine, t.account_id) == rows_before
    finally:
        engine.dispose()
    assert t.balance() == before


def _message_rows(engine: sa.Engine, account_id: int) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(messages.c.account_id == account_id)
        return int(conn.execute(query).scalar_one())


def test_concurrent_requests_with_one_key_charge_once_and_all_get_the_same_answer(
    api: Any, db_url: str
) -> None:
    t = tenant(api)
    body = {"from": t.number, "to": "+14155550111", "text": "once", "user": t.user}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: t.post("/v1/messages", body, key="k-same"), range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
    assert len(_message_entries(t)) == 1
    engine = make_engine(db_url)
    try:
        assert _message_rows(engine, t.account_id) == 1
    finally:
        engine.dispose()
