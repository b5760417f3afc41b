"""`PATCH /v1/admin/accounts/{id}` under an Idempotency-Key: the answer is stored with the
change, so a replay is the original answer and another change under the key is refused; on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import apikit
from apikit import ADMIN, tenant


def _patch(api: Any, account_id: int, body: dict[str, Any], key: str) -> Any:
    return api.patch(
        f"/v1/admin/accounts/{account_id}", json=body, headers={**ADMIN, "Idempotency-Key": key}
    )


def test_an_account_change_key_reused_with_another_change_is_refused_and_applies_nothing(
    api: Any,
) -> None:
    """A status change's key sent again with a rate card or a plan added was answered 200 and
    applied the addition."""
    apikit.import_tiny_card(api)
    t = tenant(api, number=None)
    assert _patch(api, t.account_id, {"status": "past_due"}, "chg-1").status_code == 200
    before = api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN).json()
    for added in ({"rate_card": "tiny"}, {"plan": "business"}):
        again = _patch(api, t.account_id, {"status": "past_due", **added}, "chg-1")
        assert again.status_code == 409, again.text
        assert (again.json()["code"], again.json()["idempotency_key"]) == (
            "idempotency_conflict",
            "chg-1",
        )
    after = api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN).json()
    assert (after["rate_card"], after["plan"]) == (before["rate_card"], before["plan"])


def test_a_replayed_account_change_answers_the_original_bytes_after_later_changes(
    api: Any,
) -> None:
    """The replay of a change answered the account as it is now (`active` for a replayed
    `past_due`), unmarked; it is the first answer, byte for byte, marked replayed."""
    t = tenant(api, number=None)
    first = _patch(api, t.account_id, {"status": "past_due"}, "chg-2")
    assert first.status_code == 200, first.text
    assert first.headers.get("Idempotent-Replayed") is None
    now = api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN)
    assert first.content == now.content  # the answer is the account as GET shows it
    assert _patch(api, t.account_id, {"status": "active"}, "chg-3").status_code == 200
    apikit.grant(api, t.account_id, "3.00")
    again = _patch(api, t.account_id, {"status": "past_due"}, "chg-2")
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN).json()["status"] == "active"


def test_a_reactivation_answers_the_free_credit_it_issued(api: Any) -> None:
    """The stored answer of a change that issues credit (a reactivation in the period) shows
    the balance with that credit, as GET does right after."""
    t = tenant(api, number=None)
    assert _patch(api, t.account_id, {"status": "canceled"}, "chg-4").status_code == 200
    answer = _patch(api, t.account_id, {"status": "active"}, "chg-5")
    assert answer.status_code == 200, answer.text
    now = api.get(f"/v1/admin/accounts/{t.account_id}", headers=ADMIN)
    assert answer.content == now.content
