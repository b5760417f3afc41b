"""A rate card naming more money than a wallet holds (2^62 micro-units) is refused at import, at
the key's line: a plan credit of 4611686018427.387905 was imported, then every account created
with the card was refused with "the monthly free credit 4611686018427387905 is too large"."""

from __future__ import annotations

from typing import Any

from talktime import money
from talktime.rating import shipped_card_dir
from talktime.rating.loader import MAX_CARD_AMOUNT
from talktime.wallet.book import MAX_WALLET_AMOUNT

from apikit import ADMIN, idem


def _card(name: str, startup: str, rental: str = "1.00") -> dict[str, str]:
    source = shipped_card_dir("default")
    files = {n: (source / n).read_text() for n in ("card.toml", "sms.csv", "voice.csv")}
    header = files["card.toml"].replace('name = "default"', f'name = "{name}"')
    files["card.toml"] = header.replace('startup = "2.00"', f'startup = "{startup}"')
    numbers = (source / "numbers.csv").read_text()
    files["numbers.csv"] = numbers.replace("US,local,1.00", f"US,local,{rental}")
    return files


def test_the_card_bound_is_the_wallets() -> None:
    assert MAX_CARD_AMOUNT == MAX_WALLET_AMOUNT


def test_a_plan_credit_past_what_a_wallet_holds_is_refused_at_its_line(api: Any) -> None:
    over = money.format(MAX_WALLET_AMOUNT + 1)
    response = api.post("/v1/admin/rate-cards", json=_card("bigplan", over), headers=ADMIN)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "card.toml:" in detail
    assert "plans.startup" in detail
    assert f"at most {money.format(MAX_WALLET_AMOUNT)}" in detail
    names = [c["name"] for c in api.get("/v1/admin/rate-cards", headers=ADMIN).json()["cards"]]
    assert "bigplan" not in names


def test_a_rental_price_past_what_a_wallet_holds_is_refused_at_its_line(api: Any) -> None:
    over = money.format(MAX_WALLET_AMOUNT + 1)
    files = _card("bigrent", "2.00", rental=over)
    response = api.post("/v1/admin/rate-cards", json=files, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert "numbers.csv:" in response.json()["detail"]


def test_a_plan_credit_at_the_bound_is_imported_and_accounts_are_created_with_it(
    api: Any,
) -> None:
    most = money.format(MAX_WALLET_AMOUNT)
    response = api.post("/v1/admin/rate-cards", json=_card("fullplan", most), headers=ADMIN)
    assert response.status_code == 201, response.text
    body = {"name": "rich", "plan": "startup", "rate_card": "fullplan"}
    created = api.post("/v1/admin/accounts", json=body, headers={**ADMIN, **idem()})
    assert created.status_code == 201, created.text
    assert created.json()["balance"]["free"] == money.format(MAX_WALLET_AMOUNT)
