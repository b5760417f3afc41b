"""Purchases and auto-recharge on both backends: credit only after payment, one recharge in
flight, a key derived from the recharge sequence, backoff, disable after N declines, the limit."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from fakestripe import fake_stripe
from talktime.cli import app
from talktime.config import Settings, get_settings
from talktime.store.wallet_tables import ledger
from talktime.wallet import IdempotencyConflictError, Wallet
from talktime.wallet import recharge as rc
from talktime.wallet.payments import (
    AutomaticPaymentUnavailableError,
    ManualProvider,
    PaymentRequest,
    PaymentResult,
    StripeProvider,
    TestProvider,
)
from wallet_helpers import T0, make_wallet

D = 1_000_000
CFG = Settings(recharge_max_declines=3, recharge_backoff_seconds=60)


def paid_account(wallet: Wallet, paid: int = 10 * D) -> int:
    """An account on the plan without free credit, holding ``paid`` of purchased credit."""
    account = wallet.create_account("acme", "free", "create").account.id
    if paid:
        wallet.grant(account, "purchased", paid, "seed")
    return account


def enable(wallet: Wallet, account: int, threshold: int = 5 * D, amount: int = 20 * D) -> None:
    with wallet.engine.begin() as conn:
        rc.configure(
            conn, account, enabled=True, threshold=threshold, amount=amount, now=rc.to_micros(T0)
        )


def recharges_of(wallet: Wallet, account: int) -> list[rc.Recharge]:
    with wallet.engine.connect() as conn:
        return rc.list_recharges(conn, account)


def process(wallet: Wallet, provider: TestProvider, after: timedelta = timedelta(0)) -> list[str]:
    done = rc.process_recharges(wallet.engine, provider, T0 + after, settings=CFG)
    return [o.outcome for o in done]


# ---- purchase ------------------------------------------------------------------------------


def test_purchase_grants_credit_only_after_the_payment_succeeds(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    provider = TestProvider()
    result = rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
    assert result.grant.kind == "purchased"
    assert wallet.balance(account).paid == 25 * D
    assert provider.paid == 25 * D
    assert wallet.verify() == []


def test_purchase_replay_returns_the_original_grant_without_paying_again(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    provider = TestProvider()
    first = rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
    again = rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
    assert again.replayed
    assert again == first
    assert len(provider.attempts) == 1
    assert wallet.balance(account).paid == 25 * D
    with pytest.raises(IdempotencyConflictError):
        rc.purchase(engine, account, 30 * D, "buy-1", provider, now=T0)


def test_declined_purchase_grants_nothing_and_leaves_the_key_free(engine: sa.Engine) -> None:
    """A refused request is not stored under its key: after the customer fixed the card, the
    same key buys. Each attempt after a decline is a payment under a key of its own (the
    provider would replay its decline to the old one)."""
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    provider = TestProvider()
    provider.decline(str(account), "insufficient_funds")
    for _ in range(2):
        with pytest.raises(rc.PaymentDeclinedError, match="insufficient_funds") as refused:
            rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
        assert refused.value.code == "payment_declined"
    assert wallet.balance(account).paid == 0
    provider.accept(str(account))
    bought = rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
    assert rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0) == replace(
        bought, replayed=True
    )
    assert provider.paid == 25 * D
    assert wallet.balance(account).paid == 25 * D
    assert wallet.verify(T0) == []


def test_a_purchase_pays_under_a_new_key_only_after_a_decline_never_after_an_error(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    keys: list[str] = []
    provider = TestProvider()
    charge = provider.charge

    def spy(request: PaymentRequest) -> PaymentResult:
        keys.append(request.idempotency_key)
        return charge(request)

    provider.charge = spy  # type: ignore[method-assign]
    provider.fail(str(account))
    with pytest.raises(rc.PaymentUnavailableError):
        rc.purchase(engine, account, 25 * D, "buy", provider, now=T0)
    provider.accept(str(account))
    provider.decline(str(account))
    with pytest.raises(rc.PaymentDeclinedError):
        rc.purchase(engine, account, 25 * D, "buy", provider, now=T0)
    provider.accept(str(account))
    rc.purchase(engine, account, 25 * D, "buy", provider, now=T0)
    first = rc.purchase_payment_key(account, "buy")
    assert keys == [first, first, rc.attempt_payment_key(account, first, 1)]
    assert keys[2] != first
    assert provider.paid == 25 * D


def test_purchase_retry_after_a_provider_error_pays_once(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    provider = TestProvider()
    provider.fail(str(account))
    with pytest.raises(rc.PaymentUnavailableError):
        rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
    provider.accept(str(account))
    rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
    rc.purchase(engine, account, 25 * D, "buy-1", provider, now=T0)
    assert provider.paid == 25 * D
    assert wallet.balance(account).paid == 25 * D


def test_manual_provider_refuses_a_purchase_and_changes_nothing(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    with pytest.raises(AutomaticPaymentUnavailableError):
        rc.purchase(engine, account, 25 * D, "buy-1", ManualProvider(), now=T0)
    assert wallet.balance(account).paid == 0


def test_purchase_through_stripe_sends_the_derived_key_and_the_saved_card(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet, 0)
    with engine.begin() as conn:
        rc.set_payment_method(
            conn, account, customer="cus_9", payment_method="pm_card_visa", now=rc.to_micros(T0)
        )
    with fake_stripe() as (base, seen):
        provider = StripeProvider("sk_test_x", api_base=base, max_network_retries=0)
        result = rc.purchase(engine, account, 12_500_000, "buy-1", provider, now=T0)
        rc.purchase(engine, account, 12_500_000, "buy-1", provider, now=T0)
    assert result.grant.source == "purchase:pi_fake1"
    [sent] = seen.requests  # the replay never reached Stripe
    assert sent["idempotency_key"] == rc.purchase_payment_key(account, "buy-1")
    assert sent["form"]["amount"] == "1250"
    assert sent["form"]["customer"] == "cus_9"
    assert wallet.balance(account).paid == 12_500_000


# ---- auto-recharge -------------------------------------------------------------------------


def test_charge_under_the_threshold_queues_one_recharge_with_a_derived_key(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 4 * D, "c1")  # 6 left: over the threshold
    assert recharges_of(wallet, account) == []
    wallet.charge(account, 2 * D, "c2")  # 4 left: under it
    wallet.charge(account, 1 * D, "c3")  # still under: no second recharge
    [queued] = recharges_of(wallet, account)
    assert (queued.sequence, queued.state, queued.amount) == (1, "pending", 20 * D)
    assert queued.idempotency_key == f"recharge:{account}:1"
    assert wallet.balance(account).paid == 3 * D  # nothing granted before payment


def test_successful_recharge_grants_credit_with_a_recharge_entry_and_event(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    provider = TestProvider()
    assert process(wallet, provider) == ["succeeded"]
    assert wallet.balance(account).paid == 24 * D
    assert [r.idempotency_key for r in provider.attempts] == [f"recharge:{account}:1"]
    [done] = recharges_of(wallet, account)
    assert done.state == "succeeded"
    assert done.provider_reference is not None
    with engine.connect() as conn:
        kinds = conn.execute(
            sa.select(ledger.c.kind).where(ledger.c.grant_id == done.grant_id)
        ).scalars()
        assert list(kinds) == ["recharge"]
    [event] = wallet.events(account, "recharge.succeeded")
    assert event["payload"]["amount"] == 20 * D
    assert process(wallet, provider) == []  # nothing left to do
    assert wallet.verify() == []


def test_a_retried_recharge_reuses_its_key_and_never_charges_twice(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    provider = TestProvider()
    # A worker claims the recharge and is paid, then dies before recording it.
    [claimed], _ = rc._claim(engine, rc.to_micros(T0), 10)
    assert rc._pay(engine, provider, claimed).succeeded
    assert wallet.balance(account).paid == 4 * D
    assert process(wallet, provider) == []  # its lease has not run out yet
    later = timedelta(microseconds=rc.LEASE_MICROS)
    assert process(wallet, provider, later) == ["succeeded"]
    assert len(provider.attempts) == 1
    assert provider.paid == 20 * D
    assert wallet.balance(account, T0 + later).paid == 24 * D
    assert recharges_of(wallet, account)[0].attempts == 2


def test_provider_error_retries_the_same_recharge_after_a_backoff(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    provider = TestProvider()
    provider.fail(str(account))
    assert process(wallet, provider) == ["error"]
    [pending] = recharges_of(wallet, account)
    assert pending.state == "pending"
    assert pending.next_attempt_at == T0 + timedelta(seconds=60)
    provider.accept(str(account))
    assert process(wallet, provider, timedelta(seconds=59)) == []
    assert process(wallet, provider, timedelta(seconds=60)) == ["succeeded"]
    assert [r.sequence for r in recharges_of(wallet, account)] == [1]


def test_declines_back_off_exponentially_then_disable_auto_recharge(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    provider = TestProvider()
    provider.decline(str(account), "insufficient_funds")
    assert process(wallet, provider) == ["declined"]
    assert recharges_of(wallet, account)[-1].next_attempt_at == T0 + timedelta(seconds=60)
    assert process(wallet, provider, timedelta(seconds=59)) == []
    assert process(wallet, provider, timedelta(seconds=60)) == ["declined"]
    assert recharges_of(wallet, account)[-1].next_attempt_at == T0 + timedelta(seconds=180)
    assert process(wallet, provider, timedelta(seconds=180)) == ["declined"]
    history = recharges_of(wallet, account)
    assert [(r.sequence, r.state) for r in history] == [(i, "declined") for i in (1, 2, 3)]
    assert len({r.idempotency_key for r in history}) == 3
    with engine.connect() as conn:
        cfg = rc.get_settings_of(conn, account)
    assert cfg is not None
    assert not cfg.enabled
    assert cfg.disabled_reason is not None
    [failed] = wallet.events(account, "recharge.failed")
    assert failed["payload"]["reason"] == "insufficient_funds"
    assert failed["payload"]["consecutive_declines"] == 3
    wallet.charge(account, 1 * D, "c2")
    assert len(recharges_of(wallet, account)) == 3  # disabled: nothing new is queued
    assert wallet.balance(account).paid == 3 * D


def test_a_success_resets_the_decline_count(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    provider = TestProvider()
    provider.decline(str(account))
    process(wallet, provider)
    provider.accept(str(account))
    assert process(wallet, provider, timedelta(seconds=60)) == ["succeeded"]
    with engine.connect() as conn:
        cfg = rc.get_settings_of(conn, account)
    assert cfg is not None
    assert (cfg.enabled, cfg.consecutive_declines) == (True, 0)


def test_no_recharge_is_queued_while_the_monthly_limit_is_reached(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    wallet.set_monthly_limit(account, 6 * D, "limit")
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")  # paid 4 < threshold, but the limit is used up
    assert recharges_of(wallet, account) == []


def test_a_queued_recharge_waits_for_the_next_period_when_the_limit_is_reached(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    wallet.set_monthly_limit(account, 7 * D, "limit")
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")  # queued: 1 of the limit left
    wallet.charge(account, 1 * D, "c2")  # limit reached
    provider = TestProvider()
    assert process(wallet, provider) == ["postponed"]
    [waiting] = recharges_of(wallet, account)
    assert waiting.state == "pending"
    assert waiting.next_attempt_at == wallet.account(account).period_end
    assert provider.attempts == []


def test_a_recharge_no_longer_needed_is_canceled_before_paying(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    wallet.grant(account, "purchased", 50 * D, "manual-top-up")
    provider = TestProvider()
    assert process(wallet, provider) == ["canceled"]
    assert provider.attempts == []


def test_recharge_without_a_card_counts_as_a_decline(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    done = rc.process_recharges(engine, ManualProvider(), T0, settings=CFG)
    assert [(o.outcome, (o.reason or "").split(":")[0]) for o in done] == [
        ("declined", "automatic_payment_unavailable")
    ]


def test_backoff_doubles_and_is_bounded() -> None:
    assert [rc.backoff(n, 60) // 1_000_000 for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert rc.backoff(60, 60) == rc.MAX_BACKOFF_MICROS


def test_settling_a_call_on_paid_credit_can_queue_a_recharge(engine: sa.Engine) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    hold = wallet.authorize(account, 4 * D, "auth", timedelta(minutes=5)).hold
    enable(wallet, account)  # 6 available: over the threshold
    assert recharges_of(wallet, account) == []
    wallet.settle(hold.id, 7 * D, "settle")  # 3 more than held: 3 left
    [queued] = recharges_of(wallet, account)
    assert queued.state == "pending"


def test_reserving_paid_credit_under_the_threshold_queues_a_recharge(engine: sa.Engine) -> None:
    # a call's hold is a debit too: the credit it reserves is no longer available
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.authorize(account, 8 * D, "auth", timedelta(minutes=5))
    [queued] = recharges_of(wallet, account)
    assert queued.state == "pending"


def test_recharge_run_command_pays_due_recharges(
    db_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    monkeypatch.setenv("TALKTIME_DATABASE_URL", db_url)
    monkeypatch.setenv("TALKTIME_PAYMENT_PROVIDER", "test")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["recharge", "run", "--now", T0.isoformat(), "--json"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    [outcome] = json.loads(out.output)
    assert (outcome["account_id"], outcome["outcome"]) == (account, "succeeded")
    assert wallet.balance(account).paid == 24 * D


def test_a_provider_reason_longer_than_its_column_is_stored_cut_on_both_backends(
    engine: sa.Engine,
) -> None:
    wallet = make_wallet(engine)
    account = paid_account(wallet)
    enable(wallet, account)
    wallet.charge(account, 6 * D, "c1")
    provider = TestProvider()
    reason = "issuer says: " + "x" * 2000
    provider.decline(str(account), reason)
    for after in (0, 60, 180):
        assert process(wallet, provider, timedelta(seconds=after)) == ["declined"]
    history = recharges_of(wallet, account)
    assert all(r.last_error == reason[:499] + "\u2026" for r in history)
    with engine.connect() as conn:
        settings = rc.get_settings_of(conn, account)
    assert settings is not None
    assert not settings.enabled
    assert settings.disabled_reason is not None
    assert len(settings.disabled_reason) == rc.DISABLED_REASON_LENGTH
    assert settings.disabled_reason.startswith("3 consecutive declines; last: issuer says: x")
    [failed] = wallet.events(account, "recharge.failed")
    assert failed["payload"]["reason"] == reason  # the event keeps the whole text
