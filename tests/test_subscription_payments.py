"""No card is charged for an account whose subscription is not active: a purchase is refused
(403 `subscription_inactive`) and a recharge never sent to the provider is canceled."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from talktime.service import credits
from talktime.wallet import recharge as rc
from talktime.wallet.payments import TestProvider
from test_recharge import CFG, D, enable, paid_account, recharges_of
from wallet_helpers import T0, make_wallet

import apikit
from apikit import tenant


@pytest.mark.parametrize("status", ["canceled", "past_due"])
def test_a_purchase_for_an_inactive_subscription_is_refused_and_charges_nothing(
    paying: TestClient, status: str
) -> None:
    t = tenant(paying, number=None)
    bought = t.post("/v1/credits", {"amount": "10.00"}, key="before")
    assert bought.status_code == 201, bought.text
    apikit.set_status(paying, t.account_id, status)
    before = t.balance()
    refused = t.post("/v1/credits", {"amount": "10.00"}, key="after")
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "subscription_inactive"
    assert t.balance() == before
    # A replay of a purchase made while active is still its original answer.
    again = t.post("/v1/credits", {"amount": "10.00"}, key="before")
    assert (again.status_code, again.content) == (201, bought.content)
    apikit.set_status(paying, t.account_id, "active")
    assert t.post("/v1/credits", {"amount": "10.00"}, key="after").status_code == 201


def test_a_queued_recharge_of_a_canceled_account_is_canceled_unpaid(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")  # under the threshold: a recharge is queued
    wallet.set_status(account, "canceled", "cancel")
    provider = TestProvider()
    done = rc.process_recharges(wallet.engine, provider, T0, settings=CFG)
    assert [(o.outcome, o.reason) for o in done] == [("canceled", "the subscription is canceled")]
    assert provider.attempts == []
    [recharge] = recharges_of(wallet, account)
    assert recharge.state == "canceled"
    assert wallet.balance(account).paid == 4 * D
    assert wallet.verify() == []


def test_a_declined_purchase_retried_after_a_cancellation_is_refused_and_charges_nothing(
    paying: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decline took no money, so the retry of its key is a new payment: it is checked again
    (before, the start record of the declined attempt let it skip the subscription check and
    charge the card of a canceled account)."""
    provider = TestProvider()
    monkeypatch.setattr(credits, "provider_from_settings", lambda settings: provider)
    t = tenant(paying, number=None)
    provider.decline(str(t.account_id))
    declined = t.post("/v1/credits", {"amount": "10.00"}, key="buy")
    assert (declined.status_code, declined.json()["code"]) == (402, "payment_declined")
    apikit.set_status(paying, t.account_id, "canceled")
    provider.accept(str(t.account_id))  # the customer fixed the card
    before = t.balance()
    retried = t.post("/v1/credits", {"amount": "10.00"}, key="buy")
    assert (retried.status_code, retried.json()["code"]) == (403, "subscription_inactive")
    assert provider.paid == 0
    assert t.balance() == before
    apikit.set_status(paying, t.account_id, "active")
    bought = t.post("/v1/credits", {"amount": "10.00"}, key="buy")
    assert bought.status_code == 201, bought.text
    assert provider.paid == 10 * D
