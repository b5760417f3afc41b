"""A number the account released: sending from it or receiving on it is refused 422
`number_not_sms_enabled` saying it was released (not that it was never the account's), and
nothing is charged; a number another account holds is still "not a number of this account".
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from apikit import idem, tenant


def test_a_send_from_or_to_a_released_number_says_it_is_released_and_charges_nothing(
    api: Any,
) -> None:
    t = tenant(api, credit="5.00")
    released = api.delete(f"/v1/numbers/{t.number_id}", headers={**t.auth, **idem()})
    assert released.status_code == 200, released.text
    before = t.balance()
    sent = t.sms("+14155550111")
    assert sent.status_code == 422, sent.text
    assert sent.json()["code"] == "number_not_sms_enabled"
    assert sent.json()["detail"] == f"{t.number} is released; send from an active number."
    received = t.post(
        "/v1/messages/inbound", {"from": "+14155550111", "to": t.number, "text": "hey"}
    )
    assert received.status_code == 422, received.text
    assert received.json()["detail"] == (
        f"{t.number} is released; messages are received only on active numbers."
    )
    assert t.balance() == before


def test_a_number_held_by_another_account_is_still_not_a_number_of_this_account(
    api: Any,
) -> None:
    owner = tenant(api, credit="5.00")
    other = tenant(api, credit="5.00", number=None)
    body = {"from": owner.number, "to": "+14155550111", "text": "hi", "user": other.user}
    sent = other.post("/v1/messages", body)
    assert sent.status_code == 422, sent.text
    assert sent.json()["detail"] == (
        f"{owner.number} is not a number of this account; send from one of your SMS-enabled "
        "numbers."
    )
