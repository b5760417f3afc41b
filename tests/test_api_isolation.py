"""No endpoint reveals or touches another account's data: their ids answer 404 (or, for a
number named in a body, the same refusal as an unknown number)."""

from __future__ import annotations

from typing import Any

from apikit import tenant


def test_every_endpoint_with_an_id_answers_404_for_another_accounts_resource(api: Any) -> None:
    owner = tenant(api)
    intruder = tenant(api, number="+14155550177")
    call = owner.post(
        "/v1/calls",
        {"direction": "outbound", "from": owner.number, "to": "+14155550111", "user": owner.user},
    ).json()
    key_id = api.get("/v1/keys", headers=owner.auth).json()["keys"][0]["id"]
    before = owner.balance()

    def attempts(call_id: str, number_id: int, user_id: str, key: str) -> list[Any]:
        return [
            intruder.get(f"/v1/calls/{call_id}"),
            intruder.post(f"/v1/calls/{call_id}/extend", {}),
            intruder.post(f"/v1/calls/{call_id}/complete", {"duration": 60}),
            api.delete(f"/v1/numbers/{number_id}", headers=intruder.auth),
            intruder.get(f"/v1/users/{user_id}"),
            api.patch(f"/v1/users/{user_id}", json={"role": "viewer"}, headers=intruder.auth),
            api.delete(f"/v1/keys/{key}", headers=intruder.auth),
        ]

    def seen(response: Any, *ids: object) -> dict[str, Any]:
        body = dict(response.json())
        body.pop("request_id")
        for value in sorted(ids, key=lambda v: -len(str(v))):
            body["detail"] = body["detail"].replace(str(value), "ID")
        body = {k: "ID" if v in ids else v for k, v in body.items()}
        return {"status": response.status_code, **body}

    theirs = attempts(call["id"], owner.number_id or 0, owner.user, key_id)
    nobody = attempts("call_nobody", 999_999, "usr_nobody", "key_nobody")
    for real, fake in zip(theirs, nobody, strict=True):
        assert real.status_code == 404, (real.request.url, real.text)
        ids = (call["id"], owner.number_id, owner.user, key_id)
        fakes = ("call_nobody", 999_999, "usr_nobody", "key_nobody")
        assert seen(real, *ids) == seen(fake, *fakes)  # indistinguishable from no such id

    # ids in bodies: another account's user or number is refused like an unknown one
    sms = intruder.post(
        "/v1/messages",
        {"from": owner.number, "to": "+14155550111", "text": "hi", "user": intruder.user},
    )
    assert sms.json()["code"] == "number_not_sms_enabled"
    as_owner_user = intruder.post(
        "/v1/messages",
        {"from": intruder.number, "to": "+14155550111", "text": "hi", "user": owner.user},
    )
    assert as_owner_user.json()["code"] == "unknown_user"
    inbound = intruder.post(
        "/v1/messages/inbound", {"from": "+14155550111", "to": owner.number, "text": "hi"}
    )
    assert inbound.json()["code"] == "number_not_sms_enabled"
    taken = intruder.post("/v1/numbers", {"e164": owner.number})
    assert taken.status_code == 409  # held numbers are exclusive; nothing else is revealed
    assert "account_id" not in taken.json()

    # the account-scoped lists show only the caller's own data
    assert [u["id"] for u in api.get("/v1/users", headers=intruder.auth).json()["users"]] == [
        intruder.user
    ]
    assert [n["e164"] for n in intruder.get("/v1/numbers").json()["numbers"]] == [intruder.number]
    assert all(
        k["account_id"] == intruder.account_id for k in intruder.get("/v1/keys").json()["keys"]
    )
    assert all(e["reference"] != call["id"] for e in intruder.ledger())

    # and nothing of the owner's changed
    assert owner.balance() == before
    assert owner.get(f"/v1/calls/{call['id']}").json()["state"] == "authorized"
    assert owner.get(f"/v1/users/{owner.user}").json()["role"] == "member"
    assert owner.get("/v1/numbers").json()["numbers"][0]["status"] == "active"
    assert api.get("/v1/keys", headers=owner.auth).json()["keys"][0]["revoked_at"] is None


def test_a_revoked_key_stops_working_at_once(api: Any) -> None:
    t = tenant(api)
    new = api.post("/v1/keys", json={"name": "temp"}, headers=t.auth).json()
    headers = {"Authorization": f"Bearer {new['key']}"}
    assert api.get("/v1/balance", headers=headers).status_code == 200
    assert api.delete(f"/v1/keys/{new['id']}", headers=t.auth).status_code == 200
    assert api.get("/v1/balance", headers=headers).status_code == 401
    listed = api.get("/v1/keys", headers=t.auth).json()["keys"]
    assert all("key" not in k for k in listed)
    assert new["key"] not in str(listed)
