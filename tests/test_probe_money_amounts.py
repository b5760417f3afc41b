"""Amounts as text: one parser (`talktime.money.parse`) answers for the API, the CLI and rate
card files alike. A money field of the API refused malformed text with its raw regex ("String
should match pattern '^[0-9]+...'") and a JSON number with "Input should be a valid string"; an
amount with a whole part past 4,300 digits raised a plain ValueError from `int()`, a 500 on a
rate card import and a traceback from `talktime accounts create --credit`."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from clikit import refused, wide_cli  # noqa: F401  (wide_cli: the `cli` fixture)
from talktime import money
from talktime.cli import app
from talktime.rating import shipped_card_dir

from apikit import ADMIN, idem, tenant

LONG = "1" * 5000


def test_an_amount_of_thousands_of_digits_is_too_large_in_a_short_sentence() -> None:
    for text in (LONG, "0" * 5000 + "1" + "0" * 4999, LONG + ".5"):
        with pytest.raises(money.MoneyError, match="too large") as refused_:
            money.parse(text)
        assert len(str(refused_.value)) < 120
    assert money.parse("0" * 5000 + "1.5") == 1_500_000  # leading zeros: an exact amount


MALFORMED = [
    *["١٢", "１２", "1_000", "1e3", " 5", "5\n", "5.", ".5", "NaN", "Infinity", "sNaN"],
    *["+5", "+0.50", "+0"],  # a leading plus was read as the amount (+5 stored 5.0000)
]


def _money_fields(t: Any) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body with the amount as {v}, field) of every money field of the API."""
    account = f"/v1/admin/accounts/{t.account_id}/grants"
    return [
        ("POST", account, {"kind": "promotional", "amount": "{v}"}, "amount"),
        ("POST", "/v1/admin/accounts", {"name": "x", "plan": "startup", "credit": "{v}"}, "credit"),
        ("POST", "/v1/credits", {"amount": "{v}"}, "amount"),
        ("PUT", "/v1/settings/monthly-limit", {"monthly_limit": "{v}"}, "monthly_limit"),
        (
            "PUT",
            "/v1/settings/low-balance",
            {"low_balance_threshold": "{v}"},
            "low_balance_threshold",
        ),
        (
            "PATCH",
            f"/v1/admin/accounts/{t.account_id}",
            {"low_balance_threshold": "{v}"},
            "low_balance_threshold",
        ),
        (
            "PUT",
            "/v1/settings/auto-recharge",
            {"enabled": True, "threshold": "{v}", "amount": "20.00"},
            "threshold",
        ),
    ]


def _send(t: Any, method: str, path: str, body: dict[str, Any], value: Any) -> Any:
    filled = {k: value if v == "{v}" else v for k, v in body.items()}
    headers = {**(ADMIN if "/admin/" in path else t.auth), **idem()}
    return t.client.request(method, path, json=filled, headers=headers)


def test_a_malformed_amount_is_refused_with_a_sentence_naming_the_field_not_a_regex(
    api: Any,
) -> None:
    t = tenant(api, number=None, credit="10")
    before = t.balance()
    for method, path, body, field in _money_fields(t):
        for value in [*MALFORMED, "0.0000001"]:
            response = _send(t, method, path, body, value)
            assert response.status_code == 422, (path, value, response.text)
            problem = response.json()
            assert problem["errors"][0]["field"] == field
            assert "pattern" not in problem["detail"], problem["detail"]
            assert "decimal amount" in problem["detail"] or "7 decimals" in problem["detail"]
    assert t.balance() == before


@pytest.mark.parametrize("value", [1.5, 100, 1e2, True])
def test_a_json_number_or_boolean_in_a_money_field_says_amounts_are_decimal_strings(
    api: Any, value: Any
) -> None:
    t = tenant(api, number=None, credit="10")
    before = t.balance()
    for method, path, body, field in _money_fields(t):
        response = _send(t, method, path, body, value)
        assert response.status_code == 422, (path, value, response.text)
        problem = response.json()
        assert problem["errors"][0]["field"] == field
        assert 'a decimal string such as "1.50"' in problem["detail"], problem["detail"]
    assert t.balance() == before


def test_a_rate_card_price_of_thousands_of_digits_is_refused_at_its_line_not_a_500(
    api: Any,
) -> None:
    source = shipped_card_dir("default")
    files = {n: (source / n).read_text() for n in ("card.toml", "sms.csv", "voice.csv")}
    files["card.toml"] = files["card.toml"].replace('name = "default"', 'name = "longprice"')
    numbers = (source / "numbers.csv").read_text()
    files["numbers.csv"] = numbers.replace("US,local,1.00", f"US,local,{LONG}")
    response = api.post("/v1/admin/rate-cards", json=files, headers=ADMIN)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "numbers.csv:" in detail
    assert "monthly: " in detail
    assert "too large" in detail
    assert len(detail) < 300


def test_a_credit_of_thousands_of_digits_is_a_cli_error_not_a_traceback(cli: CliRunner) -> None:
    result = cli.invoke(app, ["accounts", "create", "acme", "--plan", "startup", "--credit", LONG])
    assert "too large" in refused(result, "invalid_amount")


def test_a_monthly_limit_with_a_leading_plus_is_refused_like_any_malformed_amount(
    api: Any,
) -> None:
    t = tenant(api, number=None)
    url = "/v1/settings/monthly-limit"
    plus = t.client.put(url, json={"monthly_limit": "+5"}, headers=t.auth)
    dot = t.client.put(url, json={"monthly_limit": "5."}, headers=t.auth)
    assert plus.status_code == dot.status_code == 422
    assert plus.json()["code"] == dot.json()["code"] == "invalid_request"
    assert plus.json()["errors"][0]["field"] == "monthly_limit"
    assert plus.json()["detail"] == dot.json()["detail"].replace("'5.'", "'+5'")
    assert t.balance()["monthly_limit"] is None


def test_a_credit_with_a_leading_plus_is_a_cli_error_as_in_the_api(cli: CliRunner) -> None:
    result = cli.invoke(app, ["accounts", "create", "acme", "--plan", "startup", "--credit", "+5"])
    assert "--credit: '+5' is not a decimal amount" in refused(result, "invalid_amount")


def test_a_rate_card_price_with_a_leading_plus_is_refused_at_its_line(api: Any) -> None:
    source = shipped_card_dir("default")
    files = {n: (source / n).read_text() for n in ("card.toml", "sms.csv", "voice.csv")}
    files["card.toml"] = files["card.toml"].replace('name = "default"', 'name = "plusprice"')
    numbers = (source / "numbers.csv").read_text()
    files["numbers.csv"] = numbers.replace("US,local,1.00", "US,local,+1.00")
    response = api.post("/v1/admin/rate-cards", json=files, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert "numbers.csv:" in response.json()["detail"]
    assert "'+1.00' is not a decimal amount" in response.json()["detail"]
