"""An operator closing an account gives back its unspent purchased credit over the API:
`GET /v1/admin/accounts/{id}/grants` shows what each grant can give back, `POST
/v1/admin/accounts/{id}/refunds` takes it back as a `refund` ledger entry (the wallet's `refund`
had no route: a support audit could only grant, never take back). On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from talktime.store import make_engine
from talktime.wallet import Wallet

from apikit import ADMIN, Tenant, tenant


def _grants(api: Any, account_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/v1/admin/accounts/{account_id}/grants", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["currency"] == "USD"
    grants: list[dict[str, Any]] = response.json()["grants"]
    return grants


def _refund(api: Any, account_id: int, grant_id: int, amount: str, key: str) -> Any:
    return api.post(
        f"/v1/admin/accounts/{account_id}/refunds",
        json={"grant_id": grant_id, "amount": amount},
        headers={**ADMIN, "Idempotency-Key": key},
    )


def _purchased(api: Any, t: Tenant) -> dict[str, Any]:
    [bought] = [g for g in _grants(api, t.account_id) if g["kind"] == "purchased"]
    return bought


def _verify(db_url: str) -> list[Any]:
    engine = make_engine(db_url)
    try:
        with Wallet(engine) as wallet:
            return wallet.verify()
    finally:
        engine.dispose()


def test_closing_an_account_refunds_its_unspent_purchased_credit_once(
    api: Any, db_url: str
) -> None:
    t = tenant(api, credit="25.00")  # and $2 of free credit, $1 of it on the number
    assert t.sms("+14155550111", "hello").status_code == 201  # from the free credit
    grants = _grants(api, t.account_id)
    assert [(g["kind"], g["refundable"]) for g in grants] == [
        ("free_monthly", "0.0000"),
        ("purchased", "25.0000"),
    ]
    bought = grants[1]
    key = uuid.uuid4().hex
    done = _refund(api, t.account_id, bought["id"], "25.00", key)
    assert done.status_code == 201, done.text
    assert (done.json()["grant_id"], done.json()["amount"]) == (bought["id"], "25.0000")
    assert done.json()["balance"]["paid"] == "0.0000"
    assert t.balance()["paid"] == "0.0000"
    assert _purchased(api, t)["refundable"] == "0.0000"
    [entry] = t.ledger(kind="refund")
    assert (entry["amount"], entry["transaction_id"]) == ("-25.0000", done.json()["transaction_id"])

    replay = _refund(api, t.account_id, bought["id"], "25.00", key)
    assert (replay.status_code, replay.content) == (201, done.content)
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = _refund(api, t.account_id, bought["id"], "1.00", key)
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")
    assert len(t.ledger(kind="refund")) == 1
    assert _verify(db_url) == []


def test_a_refund_refused_changes_nothing_and_leaves_its_key_free(api: Any, db_url: str) -> None:
    t = tenant(api, credit="5.00")
    someone = tenant(api, credit="5.00", number=None)
    [free] = [g for g in _grants(api, t.account_id) if g["kind"] == "free_monthly"]
    bought = _purchased(api, t)
    before = t.balance()
    key = uuid.uuid4().hex
    refusals = [
        (_refund(api, t.account_id, free["id"], "1.00", key), 409, "refund_not_allowed"),
        (_refund(api, t.account_id, bought["id"], "5.01", key), 409, "refund_not_allowed"),
        (_refund(api, t.account_id, 10**9, "1.00", key), 404, "grant_not_found"),
        # another account's grant is no grant of this one
        (
            _refund(api, t.account_id, _purchased(api, someone)["id"], "1.00", key),
            404,
            "grant_not_found",
        ),
        (_refund(api, 10**9, bought["id"], "1.00", key), 404, "not_found"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    too_much = refusals[1][0].json()
    assert (too_much["refundable"], too_much["needed"]) == ("5.0000", "5.0100")
    assert too_much["currency"] == "USD"
    assert "has 5.0000 USD of unspent credit that can be refunded" in too_much["detail"]
    tenant_key = t.client.post(
        f"/v1/admin/accounts/{t.account_id}/refunds",
        json={"grant_id": bought["id"], "amount": "1.00"},
        headers={**t.auth, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert tenant_key.status_code == 403, tenant_key.text
    assert t.balance() == before
    assert t.ledger(kind="refund") == []

    done = _refund(api, t.account_id, bought["id"], "2.00", key)  # the key was not spent
    assert done.status_code == 201, done.text
    assert _purchased(api, t)["refundable"] == "3.0000"
    assert _verify(db_url) == []


def test_credit_a_hold_reserves_is_not_refundable_until_it_is_released(
    api: Any, db_url: str
) -> None:
    t = tenant(api, credit="1.00")  # $1 of free credit left after the number, $1 purchased
    bought = _purchased(api, t)
    engine = make_engine(db_url)
    try:
        with Wallet(engine) as wallet:
            # a call's hold of $1.40: the free dollar, then $0.40 of the purchased one
            hold = wallet.authorize(t.account_id, 1_400_000, "call-hold", timedelta(minutes=5))
            held = _purchased(api, t)
            assert (held["held"], held["refundable"]) == ("0.4000", "0.6000")
            refused = _refund(api, t.account_id, bought["id"], "0.61", uuid.uuid4().hex)
            assert (refused.status_code, refused.json()["code"]) == (409, "refund_not_allowed")
            wallet.void(hold.hold.id, "hang-up")
    finally:
        engine.dispose()
    assert _purchased(api, t)["refundable"] == "1.0000"


def test_an_admin_reads_any_accounts_ledger_with_the_tenants_filters(api: Any) -> None:
    # support looked up a disputed charge only by minting a key in the customer's account
    t = tenant(api, credit="5.00")
    sent = t.sms("+14155550111", "hello")
    assert sent.status_code == 201, sent.text
    message = sent.json()["id"]
    theirs = t.get("/v1/ledger", reference=message).json()
    ours = api.get(
        f"/v1/admin/accounts/{t.account_id}/ledger",
        params={"reference": message},
        headers=ADMIN,
    )
    assert ours.status_code == 200, ours.text
    assert ours.json() == theirs
    assert [e["kind"] for e in ours.json()["entries"]] == ["usage"]
    everything = api.get(f"/v1/admin/accounts/{t.account_id}/ledger", headers=ADMIN).json()
    assert everything == t.get("/v1/ledger").json()
    unknown = api.get("/v1/admin/accounts/999999/ledger", headers=ADMIN)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    bad = api.get(
        f"/v1/admin/accounts/{t.account_id}/ledger", params={"kind": "nope"}, headers=ADMIN
    )
    assert bad.status_code == 422
    tenant_key = t.get(f"/v1/admin/accounts/{t.account_id}/ledger")
    assert tenant_key.status_code == 403
