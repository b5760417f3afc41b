"""Admin account changes: a PATCH is bound to its whole body and replays its first answer, a
card in another currency never prices an account, the card of a PATCH applies to what the
same PATCH grants, unknown plans are named on the account's card, grant expiries are 422s."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from talktime import money
from talktime.rating import shipped_card_dir
from talktime.service import cards
from talktime.wallet.cycle import run_cycle

import apikit
from apikit import ADMIN, idem, tenant
from ratecards import FIRST_SHIPPED, SHIPPED


def _import(api: Any, name: str, **changes: str) -> Any:
    """Import the shipped default card as ``name``, with `card.toml` text replaced."""
    source = shipped_card_dir("default")
    files = {n: (source / n).read_text() for n in ("sms.csv", "voice.csv", "numbers.csv")}
    header = (source / "card.toml").read_text().replace('name = "default"', f'name = "{name}"')
    for old, new in changes.items():
        assert old in header
        header = header.replace(old, new)
    files["card.toml"] = header
    return api.post("/v1/admin/rate-cards", json=files, headers=ADMIN)


def _euro(api: Any, name: str = "euro") -> None:
    response = _import(api, name, **{'currency = "USD"': 'currency = "EUR"'})
    assert response.status_code == 201, response.text


def _patch(api: Any, account_id: int, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {**ADMIN, "Idempotency-Key": key} if key else {**ADMIN, **idem()}
    return api.patch(f"/v1/admin/accounts/{account_id}", json=body, headers=headers)


def _account(api: Any, account_id: int) -> dict[str, Any]:
    response = api.get(f"/v1/admin/accounts/{account_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_a_card_in_another_currency_is_refused_for_an_account_and_changes_nothing(
    api: Any,
) -> None:
    _euro(api)
    t = tenant(api, credit="5.00")
    before = _account(api, t.account_id)
    refused = _patch(api, t.account_id, {"rate_card": "euro", "plan": "business"})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "rate_card_currency_mismatch"
    assert problem["detail"] == (
        f"rate card 'euro' prices in EUR but account {t.account_id} is billed in USD; "
        "choose a card that prices in USD"
    )
    assert _account(api, t.account_id) == before  # card, plan and balances unchanged
    sent = t.sms("+14155550111")
    assert sent.status_code == 201, sent.text
    assert sent.json()["currency"] == "USD"
    assert sent.json()["rate_card"].startswith("default@")


def test_an_account_created_on_a_card_in_another_currency_is_billed_in_that_currency(
    api: Any,
) -> None:
    _euro(api)
    body = {"name": "Euro Ltd", "plan": "startup", "rate_card": "euro", "credit": "3.00"}
    created = api.post("/v1/admin/accounts", json=body, headers={**ADMIN, **idem()})
    assert created.status_code == 201, created.text
    assert created.json()["currency"] == "EUR"
    assert created.json()["balance"]["currency"] == "EUR"
    account_id = created.json()["id"]
    key = api.post(f"/v1/admin/accounts/{account_id}/keys", json={}, headers=ADMIN).json()["key"]
    balance = api.get("/v1/balance", headers={"Authorization": f"Bearer {key}"})
    assert balance.json()["currency"] == "EUR"
    # and back to a USD card is refused
    refused = _patch(api, account_id, {"rate_card": "default"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "rate_card_currency_mismatch"
    assert _account(api, account_id)["rate_card"] == "euro"


def test_a_new_version_of_a_card_in_another_currency_is_refused_at_import(api: Any) -> None:
    later = {"version = ": 'version = "2027.1.1"\n# ', 'currency = "USD"': 'currency = "EUR"'}
    refused = _import(api, "default", **later)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "rate_card_currency_mismatch"
    assert "every version of a card keeps its currency" in refused.json()["detail"]
    listed = api.get("/v1/admin/rate-cards", headers=ADMIN).json()["cards"]
    assert [c["version"] for c in listed if c["name"] == "default"] == [FIRST_SHIPPED, SHIPPED]


def test_an_account_patch_key_reused_for_another_change_is_a_conflict_and_changes_nothing(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    assert _patch(api, t.account_id, {"plan": "business"}, "p1").status_code == 200
    for other in ({"status": "canceled"}, {"rate_card": "passthrough"}, {"plan": "startup"}):
        refused = _patch(api, t.account_id, other, "p1")
        assert refused.status_code == 409, (other, refused.text)
        assert refused.json()["code"] == "idempotency_conflict"
        assert "'p1'" in refused.json()["detail"]
    after = _account(api, t.account_id)
    assert (after["plan"], after["status"], after["rate_card"]) == ("business", "active", "default")


def test_a_replayed_account_patch_is_the_original_answer_marked_replayed(api: Any) -> None:
    t = tenant(api, number=None)
    first = _patch(api, t.account_id, {"status": "past_due"}, "s1")
    assert first.status_code == 200, first.text
    assert first.headers.get("Idempotent-Replayed") is None
    assert _patch(api, t.account_id, {"status": "active"}, "s2").status_code == 200
    again = _patch(api, t.account_id, {"status": "past_due"}, "s1")
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _account(api, t.account_id)["status"] == "active"  # the replay changed nothing


def test_an_unknown_plan_is_refused_naming_the_plans_of_the_accounts_card(api: Any) -> None:
    t = tenant(api, number=None)
    refused = _patch(api, t.account_id, {"plan": "enterprise"})
    assert refused.status_code == 404, refused.text
    assert refused.json()["code"] == "plan_not_found"
    assert refused.json()["detail"] == (
        "rate card 'default' has no plan 'enterprise'; "
        "choose one of 'business', 'professional', 'startup'"
    )
    assert _account(api, t.account_id)["plan"] == "startup"
    body = {"name": "Acme", "plan": "enterprise"}
    created = api.post("/v1/admin/accounts", json=body, headers={**ADMIN, **idem()})
    assert created.status_code == 404, created.text
    assert "choose one of 'business'" in created.json()["detail"]


def test_a_plan_only_another_card_has_is_refused_and_changes_nothing(api: Any) -> None:
    # Only the shared plans table was asked: `basic` of the EUR card was accepted on the
    # default card (and `business` of the default card on the EUR one), with the other
    # card's free credit, in that card's currency.
    response = _import(
        api,
        "euro",
        **{'currency = "USD"': 'currency = "EUR"', 'startup = "2.00"': 'basic = "3.00"'},
    )
    assert response.status_code == 201, response.text
    on_default = api.post(
        "/v1/admin/accounts", json={"name": "E3", "plan": "basic"}, headers={**ADMIN, **idem()}
    )
    assert on_default.status_code == 404, on_default.text
    assert on_default.json()["detail"].startswith("rate card 'default' has no plan 'basic'; ")
    on_euro = api.post(
        "/v1/admin/accounts",
        json={"name": "E1", "plan": "startup", "rate_card": "euro"},
        headers={**ADMIN, **idem()},
    )
    assert on_euro.status_code == 404, on_euro.text
    assert "choose one of 'basic', 'business', 'professional'" in on_euro.json()["detail"]
    t = tenant(api, number=None)
    before = _account(api, t.account_id)
    patched = _patch(api, t.account_id, {"plan": "basic"})
    assert patched.status_code == 404, patched.text
    assert _account(api, t.account_id) == before


def test_a_new_card_without_the_accounts_plan_is_refused_unless_a_plan_of_it_is_given(
    api: Any,
) -> None:
    response = _import(api, "lean", **{'startup = "2.00"': 'basic = "3.00"'})
    assert response.status_code == 201, response.text
    t = tenant(api, number=None)  # on `startup`, which `lean` does not have
    before = _account(api, t.account_id)
    refused = _patch(api, t.account_id, {"rate_card": "lean"})
    assert refused.status_code == 404, refused.text
    assert refused.json()["detail"].startswith(
        "rate card 'lean' has no plan 'startup' (the account's plan): give one of its plans"
    )
    assert _account(api, t.account_id) == before
    moved = _patch(api, t.account_id, {"rate_card": "lean", "plan": "basic"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["rate_card"], moved.json()["plan"]) == ("lean", "basic")


def test_a_reactivation_with_a_new_card_grants_the_free_credit_of_the_new_card(
    db_url: str, tmp_path: Path
) -> None:
    with apikit.account_from_last_month(db_url, tmp_path / "cards", "business", "10.00") as m:
        client, wallet, account = m.client, m.wallet, m.account
        response = _import(client, "rich", **{'business = "10.00"': 'business = "20.00"'})
        assert response.status_code == 201, response.text
        wallet.set_status(account, "past_due", "late", now=m.last_month + timedelta(days=1))
        run_cycle(m.engine, m.now, plan_credit=cards.plan_credit(m.settings))
        assert wallet.balance(account).free == 0

        done = _patch(client, account, {"status": "active", "rate_card": "rich"})
        assert done.status_code == 200, done.text
        assert done.json()["balance"]["free"] == "20.0000"  # the card it is priced with now
        assert wallet.balance(account).free == money.parse("20.00")
        assert wallet.verify() == []
