"""Times as text in the API are ISO 8601 (UTC when they carry no zone). A number was read as Unix
seconds, or as milliseconds past 2e10 (`expires_at: 20000000001` was 1970-08-20, `since=
1700000000000` a day of 2023); a grant's `expires_at` past the wallet's range was a 400 naming
no field; and `/v1/ledger` took times from year 1 to 9999 that `/v1/usage` and the embedded
wallet refuse."""

from __future__ import annotations

from typing import Any

import pytest

from apikit import ADMIN, idem, tenant

NUMBERS: list[Any] = [1900000000, 1900000000000, 20000000001, 1.9e9, "1900000000", " 1900000000"]


def _grant(api: Any, account_id: int, expires_at: Any) -> Any:
    body = {"kind": "promotional", "amount": "1.00", "expires_at": expires_at}
    return api.post(
        f"/v1/admin/accounts/{account_id}/grants", json=body, headers={**ADMIN, **idem()}
    )


def _refused(response: Any, field: str, words: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] in ("invalid_request", "invalid_usage_query")
    assert problem["errors"][0]["field"] == field
    assert words in problem["detail"], problem["detail"]


def test_a_number_as_a_grants_expiry_is_refused_not_read_as_a_unix_time(api: Any) -> None:
    t = tenant(api, number=None)
    before = t.balance()
    for value in NUMBERS:
        _refused(_grant(api, t.account_id, value), "expires_at", "ISO 8601 time")
    assert t.balance() == before


@pytest.mark.parametrize(
    "value", ["9000-01-01T00:00:00Z", "9999-12-31T23:59:59", "8999-12-31T23:59:59-12:00"]
)
def test_an_expiry_past_the_wallets_range_is_a_422_naming_expires_at(api: Any, value: str) -> None:
    t = tenant(api, number=None)
    before = t.balance()
    _refused(_grant(api, t.account_id, value), "expires_at", "out of range")
    assert t.balance() == before


def test_an_expiry_without_a_zone_is_utc(api: Any) -> None:
    t = tenant(api, number=None)
    response = _grant(api, t.account_id, "2030-01-01T12:00:00")
    assert response.status_code == 201, response.text
    assert response.json()["grant"]["expires_at"] == "2030-01-01T12:00:00+00:00"


@pytest.mark.parametrize("path", ["/v1/ledger", "/v1/usage"])
@pytest.mark.parametrize("param", ["since", "until"])
def test_a_number_as_a_report_bound_is_refused_not_read_as_a_unix_time(
    api: Any, path: str, param: str
) -> None:
    t = tenant(api, number=None)
    for value in ["1700000000", "1700000000000", "0", "-1", "1700000000.5"]:
        _refused(t.get(path, **{param: value}), param, "ISO 8601 time")


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00"]
)
def test_the_ledger_refuses_the_times_usage_and_the_wallet_refuse(api: Any, value: str) -> None:
    t = tenant(api, number=None)
    for path in ("/v1/ledger", "/v1/usage"):
        response = t.get(path, since=value)
        assert response.status_code == 422, (path, response.text)
        assert "from 1970-01-01" in response.json()["detail"]
        assert "9000-01-01 (UTC) are accepted" in response.json()["detail"]
    assert t.get("/v1/ledger", since="1970-01-01T00:00:00Z").status_code == 200


def test_the_out_of_range_sentence_does_not_name_the_first_refused_time_as_accepted(
    api: Any,
) -> None:
    t = tenant(api)
    r = _grant(api, t.account_id, "9000-01-01")
    assert r.status_code == 422, r.text
    assert "up to, not including, 9000-01-01" in r.json()["detail"], r.text
