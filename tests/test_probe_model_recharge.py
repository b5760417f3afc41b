"""A stateful model of auto-recharge together with the monthly limit, holds, the subscription
status and setting changes, on SQLite and PostgreSQL.

Written from the README (Payments, auto-recharge and the monthly cycle; Wallet decisions):

- a debit (a charge, a batch, a reservation of more credit, a settle of an amount) queues a
  recharge due at once when auto-recharge is on, paid credit available (not reserved by holds)
  is under the threshold, this period's paid usage has not reached the limit and no recharge
  is in flight; so does turning auto-recharge on; a refused request, a void, a settle of
  nothing or an extension that only moves the deadline queues nothing;
- a charge or reservation counts paid usage plus the paid credit pending holds reserve; a
  settle never checks the limit;
- the worker cancels a recharge never sent to the provider when auto-recharge is off, the
  subscription is not `active` or paid credit is back at or over the threshold; otherwise,
  while the limit is reached, it postpones it to the period's end; otherwise it pays the amount
  set now (a recharge already sent keeps its amount); a limit change makes a postponed one due;
- a provider error retries the same recharge after 60 s x 2^(attempt-1); a decline ends it and
  queues the next after 60 s x 2^(declines-1), until the third turns auto-recharge off;
- a batch of charges is one transaction: each item succeeds or is refused on its own, in order,
  and the recharge check runs once, when it ends (paid credit and the limit as they are then);
- an extension reserves more on a pending hold (checked and queuing like a reservation) and
  with a ttl moves its deadline; past its deadline a hold cannot be extended, and the hold job
  releases it (a settle of an expired hold takes what credit is available);
- a request that succeeded answers its stored result byte for byte when repeated, whatever
  changed since, and moves nothing; the same key with another request is a conflict; a refused
  request is not stored, so its key can succeed later.

The account has no free credit (its plan's is 0), so every debit is paid.
``PROBE_MODEL_EXAMPLES`` / ``PROBE_MODEL_STEPS`` raise the example counts for a soak.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from talktime.config import Settings
from talktime.wallet import (
    ChargeItem,
    ChargeResult,
    HoldNotPendingError,
    IdempotencyConflictError,
    InsufficientCreditError,
    InvalidAmountError,
    MonthlyLimitReachedError,
    Wallet,
    to_json,
)
from talktime.wallet import recharge as rc
from talktime.wallet.cycle import advance
from talktime.wallet.payments import TestProvider
from talktime.wallet.periods import period_bounds, to_micros

import modeldb
from modelkeys import fresh_or_refused

EXAMPLES = int(os.environ.get("PROBE_MODEL_EXAMPLES", "10"))
STEPS = int(os.environ.get("PROBE_MODEL_STEPS", "30"))
CENT = 10_000
CFG = Settings(recharge_max_declines=3, recharge_backoff_seconds=60)
_examples = itertools.count()


@dataclass
class MRecharge:
    due: datetime
    attempts: int = 0
    amount: int | None = None  # fixed once sent
    postponed: bool = False


@dataclass
class MHold:
    amount: int
    expires_at: datetime
    state: str = "pending"


@dataclass(frozen=True)
class Done:
    """A request that succeeded: repeating it must answer ``text`` again."""

    call: str
    args: tuple[Any, ...]
    key: str
    text: str


@dataclass
class M:
    """The account: paid credit as one pool (no expiry), holds, usage per period, settings."""

    anchor: datetime
    paid: int = 0  # remaining (reserved included)
    held: int = 0
    limit: int | None = None
    usage: dict[datetime, int] = field(default_factory=dict)
    status: str = "active"
    enabled: bool = True
    threshold: int = 0
    amount: int = CENT
    declines: int = 0
    flight: MRecharge | None = None

    def period(self, now: datetime) -> tuple[datetime, datetime]:
        return period_bounds(self.anchor, now)

    def used(self, now: datetime) -> int:
        return self.usage.get(self.period(now)[0], 0)

    def limit_reached(self, now: datetime) -> bool:
        return self.limit is not None and self.used(now) >= self.limit

    def refusal(self, now: datetime, amount: int) -> type[Exception] | None:
        if amount <= 0:
            return InvalidAmountError
        if amount > self.paid - self.held:
            return InsufficientCreditError
        if self.limit is not None and self.used(now) + self.held + amount > self.limit:
            return MonthlyLimitReachedError
        return None

    def use(self, now: datetime, amount: int) -> None:
        start = self.period(now)[0]
        self.usage[start] = self.usage.get(start, 0) + amount

    def queue(self, now: datetime) -> None:
        """The check at the end of a transaction that debited (`Book.flush`), or that turned
        auto-recharge on (`recharge.configure`)."""
        if (
            self.enabled
            and self.paid - self.held < self.threshold
            and not self.limit_reached(now)
            and self.flight is None
        ):
            self.flight = MRecharge(due=now)


class RechargeLimitMachine(RuleBasedStateMachine):
    engine: sa.Engine

    @initialize(
        limit=st.none() | st.integers(0, 60).map(lambda c: c * CENT),
        threshold=st.integers(0, 40).map(lambda c: c * CENT),
        amount=st.integers(1, 8).map(lambda c: c * CENT),
        bought=st.integers(0, 40).map(lambda c: c * CENT),
        anchor_day=st.sampled_from([1, 30, 31]),
    )
    def start(
        self, limit: int | None, threshold: int, amount: int, bought: int, anchor_day: int
    ) -> None:
        era = next(_examples)
        modeldb.empty(self.engine)  # alone in the database, at the same start as any other
        self.now = datetime(2400, 1, anchor_day, 9, tzinfo=UTC)
        self.wallet = Wallet(self.engine, clock=lambda: self.now)
        self.wallet.upsert_plan("nofree", 0)
        self.provider = TestProvider()
        self.account = self.wallet.create_account(
            "r", "nofree", f"create-{era}", anchor=self.now, monthly_limit=limit
        ).account.id
        self.keys = itertools.count()
        self.done: list[Done] = []
        self.refused_keys: list[str] = []
        self.m = M(self.now, limit=limit, threshold=threshold, amount=amount)
        if bought:
            self.wallet.grant(self.account, "purchased", bought, self.key())
            self.m.paid = bought
        self.configure(True, threshold, amount)
        self.holds: dict[int, MHold] = {}

    def key(self) -> str:
        return f"k{self.account}-{next(self.keys)}"

    def some_key(self, data: st.DataObject) -> str:
        """A fresh key, or one a refused request used (it was not stored, so it is free)."""
        return fresh_or_refused(data, self.refused_keys, self.key)

    def refused(self, key: str) -> None:
        if key not in self.refused_keys:
            self.refused_keys.append(key)

    def remember(self, call: str, args: tuple[Any, ...], key: str, result: Any) -> None:
        self.done.append(Done(call, args, key, to_json(result)))

    def configure(self, enabled: bool, threshold: int, amount: int) -> None:
        with self.engine.begin() as conn:
            rc.configure(
                conn,
                self.account,
                enabled=enabled,
                threshold=threshold,
                amount=amount,
                now=to_micros(self.now),
            )
        self.m.enabled, self.m.threshold, self.m.amount = enabled, threshold, amount
        if enabled:
            self.m.declines = 0
            self.m.queue(self.now)  # paid credit already under the threshold

    @rule(amount=st.integers(1, 10).map(lambda c: c * CENT))
    def an_operator_grants_credit(self, amount: int) -> None:
        key = self.key()
        result = self.wallet.grant(self.account, "purchased", amount, key)
        self.m.paid += amount
        self.remember("grant", (self.account, amount, key), key, result)

    # ---- debits -----------------------------------------------------------------------------

    @rule(data=st.data(), amount=st.integers(1, 6).map(lambda c: c * CENT + 1))
    def charge(self, data: st.DataObject, amount: int) -> None:
        key = self.some_key(data)
        refused = self.m.refusal(self.now, amount)
        if refused is not None:
            with pytest.raises(refused):
                self.wallet.charge(self.account, amount, key)
            self.refused(key)
            return
        result = self.wallet.charge(self.account, amount, key)
        assert (result.from_free, result.from_paid, result.replayed) == (0, amount, False)
        self.m.paid -= amount
        self.m.use(self.now, amount)
        self.m.queue(self.now)
        self.remember("charge", (self.account, amount, key), key, result)

    @rule(
        data=st.data(),
        amounts=st.lists(
            st.sampled_from([0, 1, 2, 3, 4, 5]).map(lambda c: c and c * CENT + 1),
            min_size=1,
            max_size=5,
        ),
    )
    def batch(self, data: st.DataObject, amounts: list[int]) -> None:
        """One transaction of charges: fresh keys, refused keys, the same item again, an
        earlier item's key with another amount, and keys of requests stored before (a charge
        replays, any other request conflicts)."""
        items: list[ChargeItem] = []
        for amount in amounts:
            how = data.draw(st.integers(0, 6), label="item") if items or self.done else 9
            if how == 0 and items:  # the same request again
                items.append(data.draw(st.sampled_from(items), label="repeated item"))
            elif how == 1 and items:  # another amount under an earlier item's key
                earlier = data.draw(st.sampled_from(items), label="earlier item")
                items.append(ChargeItem(self.account, earlier.amount + 1, earlier.key))
            elif how == 2 and self.done:  # a stored request's key, maybe its own amount
                done = data.draw(st.sampled_from(self.done), label="stored request")
                same = done.call == "charge" and data.draw(st.booleans(), label="same amount")
                items.append(ChargeItem(self.account, done.args[1] if same else amount, done.key))
            else:
                items.append(ChargeItem(self.account, amount, self.some_key(data)))
        results = self.wallet.charge_batch(items)
        stored = {d.key: d for d in self.done}
        debited = False
        for item, result in zip(items, results, strict=True):
            earlier = stored.get(item.key)
            if item.amount > 0 and earlier is not None:
                if earlier.call == "charge" and earlier.args[1] == item.amount:
                    assert isinstance(result, ChargeResult), (item, result)
                    assert result.replayed
                    assert to_json(result) == earlier.text
                else:
                    assert isinstance(result, IdempotencyConflictError), (item, result)
                continue
            refused = self.m.refusal(self.now, item.amount)
            if refused is not None:
                assert isinstance(result, refused), (item, result)
                if item.key not in stored:  # an invalid amount under a stored key: still stored
                    self.refused(item.key)
                continue
            assert isinstance(result, ChargeResult), (item, result)
            assert (result.from_free, result.from_paid, result.replayed) == (0, item.amount, False)
            assert (result.balance.paid, result.balance.held) == (
                self.m.paid - item.amount,
                self.m.held,
            )
            self.m.paid -= item.amount
            self.m.use(self.now, item.amount)
            debited = True
            if item.key in self.refused_keys:
                self.refused_keys.remove(item.key)
            self.remember("charge", (self.account, item.amount, item.key), item.key, result)
            stored[item.key] = self.done[-1]
        if debited:
            self.m.queue(self.now)  # once, when the batch's transaction ends

    @rule(
        data=st.data(),
        amount=st.integers(1, 6).map(lambda c: c * CENT),
        ttl=st.sampled_from([timedelta(days=400), timedelta(days=400), timedelta(minutes=3)]),
    )
    def authorize(self, data: st.DataObject, amount: int, ttl: timedelta) -> None:
        key = self.some_key(data)
        refused = self.m.refusal(self.now, amount)
        if refused is not None:
            with pytest.raises(refused):
                self.wallet.authorize(self.account, amount, key, ttl)
            self.refused(key)
            return
        hold = self.wallet.authorize(self.account, amount, key, ttl)
        self.m.held += amount
        self.m.queue(self.now)  # a reservation is a debit
        self.holds[hold.hold.id] = MHold(amount, self.now + ttl)
        self.remember("authorize", (self.account, amount, key, ttl), key, hold)

    def pending(self) -> list[int]:
        return sorted(h for h, v in self.holds.items() if v.state == "pending")

    @precondition(lambda self: self.pending())
    @rule(
        data=st.data(),
        amount=st.integers(0, 8).map(lambda c: c * CENT),
        ttl=st.sampled_from([None, None, timedelta(minutes=3), timedelta(days=400)]),
    )
    def extend(self, data: st.DataObject, amount: int, ttl: timedelta | None) -> None:
        hold_id = data.draw(st.sampled_from(self.pending()))
        hold = self.holds[hold_id]
        key = self.some_key(data)
        refused: type[Exception] | None = None
        if amount == 0 and ttl is None:
            refused = InvalidAmountError  # only a new deadline may reserve nothing more
        elif hold.expires_at <= self.now:
            refused = HoldNotPendingError  # past its deadline, swept or not
        elif amount:
            refused = self.m.refusal(self.now, amount)
        if refused is not None:
            with pytest.raises(refused):
                self.wallet.extend(hold_id, amount, key, ttl=ttl)
            self.refused(key)
            return
        result = self.wallet.extend(hold_id, amount, key, ttl=ttl)
        self.m.held += amount
        if amount:
            self.m.queue(self.now)  # reserving more is a debit; a new deadline alone is not
        hold.amount += amount
        if ttl is not None:
            hold.expires_at = self.now + ttl
        assert (result.hold.amount, result.hold.expires_at) == (hold.amount, hold.expires_at)
        assert (result.balance.paid, result.balance.held) == (self.m.paid, self.m.held)
        self.remember("extend", (hold_id, amount, key, ttl), key, result)

    def settleable(self) -> list[int]:
        return sorted(h for h, v in self.holds.items() if v.state in ("pending", "expired"))

    @precondition(lambda self: self.settleable())
    @rule(data=st.data(), actual=st.integers(0, 8).map(lambda c: c * CENT))
    def settle(self, data: st.DataObject, actual: int) -> None:
        hold_id = data.draw(st.sampled_from(self.settleable()))
        hold = self.holds[hold_id]
        key = self.some_key(data)
        result = self.wallet.settle(hold_id, actual, key)
        if hold.state == "pending":  # an expired hold reserves nothing any more
            self.m.held -= hold.amount
        charged = min(actual, self.m.paid - self.m.held)
        assert (result.charged, result.uncollected) == (charged, actual - charged)
        self.m.paid -= charged
        hold.state = "settled"
        self.m.use(self.now, charged)
        if actual:
            self.m.queue(self.now)  # even when nothing was left to take (uncollected)
        self.remember("settle", (hold_id, actual, key), key, result)

    @precondition(lambda self: self.pending())
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(self.pending()))
        key = self.some_key(data)
        result = self.wallet.void(hold_id, key)
        self.m.held -= self.holds[hold_id].amount
        self.holds[hold_id].state = "voided"
        self.remember("void", (hold_id, key), key, result)

    @rule()
    def the_hold_job_runs(self) -> None:
        due = [h for h in self.holds.values() if h.state == "pending" and h.expires_at <= self.now]
        for hold in due:
            self.m.held -= hold.amount
            hold.state = "expired"
        # the job sweeps the whole database (earlier examples' accounts too)
        assert self.wallet.expire_holds() >= len(due)

    # ---- replays ----------------------------------------------------------------------------

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """A request that succeeded, again, whatever changed since: its stored answer byte for
        byte and nothing moves (no recharge either); another request under its key conflicts."""
        done = data.draw(st.sampled_from(self.done), label="stored request")
        w = self.wallet
        calls = {
            "grant": lambda a, n, k, d=0: w.grant(a, "purchased", n + d, k),
            "charge": lambda a, n, k, d=0: w.charge(a, n + d, k),
            "authorize": lambda a, n, k, ttl, d=0: w.authorize(a, n + d, k, ttl),
            "extend": lambda h, n, k, ttl, d=0: w.extend(h, n + d, k, ttl=ttl),
            "settle": lambda h, n, k, d=0: w.settle(h, n + d, k),
            "void": lambda h, k, d=0: w.void(h, k),
        }
        again = calls[done.call](*done.args)
        assert again.replayed
        assert to_json(again) == done.text
        if done.call != "void":
            with pytest.raises(IdempotencyConflictError):
                calls[done.call](*done.args, d=1)
        other = data.draw(st.sampled_from(["charge", "authorize"]), label="other operation")
        if other != done.call:  # the key under another operation
            reuse = {
                "charge": lambda: w.charge(self.account, CENT, done.key),
                "authorize": lambda: w.authorize(self.account, CENT, done.key, timedelta(days=1)),
            }[other]
            with pytest.raises(IdempotencyConflictError):
                reuse()

    # ---- settings ---------------------------------------------------------------------------

    @rule(limit=st.none() | st.integers(0, 80).map(lambda c: c * CENT))
    def limit_changes(self, limit: int | None) -> None:
        self.wallet.set_monthly_limit(self.account, limit, self.key())
        self.m.limit = limit
        if self.m.flight is not None and self.m.flight.postponed and self.m.flight.due > self.now:
            self.m.flight.due = self.now

    @rule(status=st.sampled_from(["active", "active", "past_due", "canceled"]))
    def status_changes(self, status: str) -> None:
        self.wallet.set_status(self.account, status, self.key())
        self.m.status = status

    @rule(
        enabled=st.booleans(),
        threshold=st.integers(0, 40).map(lambda c: c * CENT),
        amount=st.integers(1, 8).map(lambda c: c * CENT),
    )
    def auto_recharge_changes(self, enabled: bool, threshold: int, amount: int) -> None:
        self.configure(enabled, threshold, amount)

    @rule(mode=st.sampled_from(["accept", "decline", "fail"]))
    def the_card_changes(self, mode: str) -> None:
        who = str(self.account)
        self.provider.accept(who)
        if mode == "decline":
            self.provider.decline(who, "insufficient_funds")
        elif mode == "fail":
            self.provider.fail(who)

    # ---- time and the worker ----------------------------------------------------------------

    @rule(step=st.sampled_from([timedelta(minutes=1), timedelta(minutes=5), timedelta(days=9)]))
    def time_passes_and_the_cycle_runs(self, step: timedelta) -> None:
        self.now += step
        at = to_micros(self.now)
        while advance(self.engine, self.account, at) is not None:
            pass

    @rule()
    def recharges_are_processed(self) -> None:
        outcomes = [
            o.outcome
            for o in rc.process_recharges(self.engine, self.provider, self.now, settings=CFG)
            if o.account_id == self.account
        ]
        assert outcomes == self.model_process(), (outcomes, self.m)

    def model_process(self) -> list[str]:
        m, r, now = self.m, self.m.flight, self.now
        if r is None or r.due > now:
            return []
        if r.attempts == 0 and (
            not m.enabled or m.status != "active" or m.paid - m.held >= m.threshold
        ):
            m.flight = None
            return ["canceled"]
        if m.limit_reached(now):
            r.due, r.postponed = m.period(now)[1], True
            return ["postponed"]
        r.postponed = False
        if r.amount is None:
            r.amount = m.amount
        r.attempts += 1
        who = str(self.account)
        if who in self.provider.failing_accounts:
            r.due = now + timedelta(seconds=60 * 2 ** (r.attempts - 1))
            return ["error"]
        if who in self.provider.declining_accounts:
            m.declines += 1
            m.flight = None
            if m.declines >= CFG.recharge_max_declines:
                m.enabled = False
            else:
                m.flight = MRecharge(due=now + timedelta(seconds=60 * 2 ** (m.declines - 1)))
            return ["declined"]
        m.paid += r.amount
        m.declines = 0
        m.flight = None
        return ["succeeded"]

    # ---- checks -----------------------------------------------------------------------------

    @invariant()
    def the_wallet_and_recharges_match_the_model(self) -> None:
        if not hasattr(self, "m"):
            return
        b = self.wallet.balance(self.account, self.now)
        assert (b.free, b.paid, b.held) == (0, self.m.paid, self.m.held)
        assert b.period_usage == self.m.used(self.now)
        with self.engine.connect() as conn:
            flying = rc.in_flight(conn, self.account)
            cfg = rc.get_settings_of(conn, self.account)
        assert cfg is not None
        assert (cfg.enabled, cfg.consecutive_declines) == (self.m.enabled, self.m.declines)
        assert (flying is None) == (self.m.flight is None), (flying, self.m.flight)
        if flying is not None and self.m.flight is not None:
            assert flying.next_attempt_at == self.m.flight.due
            assert flying.attempts == self.m.flight.attempts
            if self.m.flight.amount is not None:
                assert flying.amount == self.m.flight.amount

    def teardown(self) -> None:
        if hasattr(self, "m"):
            breaches = [b for b in self.wallet.verify(self.now) if b.account_id == self.account]
            self.wallet.close()
            assert breaches == []


def test_auto_recharge_keeps_the_monthly_limit_holds_and_settings_of_the_model(
    engine: sa.Engine,
) -> None:
    RechargeLimitMachine.engine = engine
    run = RechargeLimitMachine.TestCase
    run.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    run().runTest()
