"""A hypothesis stateful test: random sequences of wallet operations against an in-memory model.

Grants, charges, batches, holds (authorize, extend, settle, void), time passing (hold and grant
expiry across month ends), replays and conflicting reuses of keys. After every step the
balances and results agree with the model, and `verify` is clean at the end of each run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from talktime.wallet import (
    ChargeItem,
    ChargeResult,
    IdempotencyConflictError,
    InsufficientCreditError,
    Wallet,
    to_json,
)
from talktime.wallet.cycle import advance
from talktime.wallet.model import DEFAULT_PRIORITY, PAID_KINDS
from talktime.wallet.periods import to_micros
from wallet_helpers import T0

FREE = 10_000


@dataclass
class MGrant:
    id: int
    kind: str
    remaining: int
    held: int
    effective_at: datetime
    expires_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.effective_at <= now and (self.expires_at is None or self.expires_at > now)

    def key(self) -> tuple[int, bool, datetime, datetime, int]:
        return (
            DEFAULT_PRIORITY[self.kind],
            self.expires_at is None,
            self.expires_at or self.effective_at,
            self.effective_at,
            self.id,
        )


@dataclass
class MHold:
    id: int
    amount: int
    expires_at: datetime
    state: str = "pending"
    allocs: dict[int, int] = field(default_factory=dict)


class Model:
    """The wallet's rules, written plainly over lists."""

    def __init__(self) -> None:
        self.grants: dict[int, MGrant] = {}

    def live(self, now: datetime) -> list[MGrant]:
        return sorted(
            (g for g in self.grants.values() if g.usable(now) and g.remaining > 0),
            key=MGrant.key,
        )

    def available(self, now: datetime) -> int:
        return sum(g.remaining - g.held for g in self.grants.values() if g.usable(now))

    def balances(self, now: datetime) -> tuple[int, int, int, int]:
        free = paid = held = 0
        for g in self.grants.values():
            amount = g.remaining if g.usable(now) else g.held
            held += g.held
            if g.kind in PAID_KINDS:
                paid += amount
            else:
                free += amount
        return free, paid, held, self.available(now)

    def take(self, now: datetime, amount: int) -> list[tuple[MGrant, int]]:
        takes, rest = [], amount
        for g in self.live(now):
            t = min(g.remaining - g.held, rest)
            if t > 0:
                takes.append((g, t))
                rest -= t
        assert rest == 0
        return takes

    def charge(self, now: datetime, amount: int) -> tuple[int, int] | None:
        if amount > self.available(now):
            return None
        paid = 0
        for g, t in self.take(now, amount):
            g.remaining -= t
            paid += t if g.kind in PAID_KINDS else 0
        return amount - paid, paid

    def reserve(self, now: datetime, hold: MHold, amount: int) -> bool:
        if amount > self.available(now):
            return False
        for g, t in self.take(now, amount):
            g.held += t
            hold.allocs[g.id] = hold.allocs.get(g.id, 0) + t
        hold.amount += amount
        return True

    def release(self, now: datetime, hold: MHold) -> list[MGrant]:
        released = []
        for gid, a in hold.allocs.items():
            self.grants[gid].held -= a
            released.append(self.grants[gid])
        return sorted(released, key=MGrant.key)

    def expire_grant(self, now: datetime, g: MGrant) -> None:
        if g.expires_at is not None and g.expires_at <= now:
            g.remaining = g.held

    def settle(self, now: datetime, hold: MHold, actual: int) -> tuple[int, int]:
        released = self.release(now, hold)
        rest = actual
        sources = [(g, hold.allocs[g.id]) for g in released]
        sources += [(g, g.remaining - g.held) for g in self.live(now)]
        for g, cap in sources:
            t = min(cap, g.remaining - g.held, rest)
            if t > 0:
                g.remaining -= t
                rest -= t
        for g in released:
            self.expire_grant(now, g)
        hold.allocs, hold.state = {}, "settled"
        return actual - rest, rest

    def close(self, now: datetime, hold: MHold, state: str) -> None:
        for g in self.release(now, hold):
            self.expire_grant(now, g)
        hold.allocs, hold.state = {}, state


class WalletMachine(RuleBasedStateMachine):
    wallet: Wallet

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.model = Model()
        self.account = self.wallet.create_account(
            "M", "tiny", self.fresh(), now=self.now
        ).account.id
        (free,) = self.wallet.grants(self.account)
        self.model.grants[free.id] = MGrant(
            free.id, "free_monthly", FREE, 0, free.effective_at, free.expires_at
        )
        self.holds: dict[int, MHold] = {}
        self.charged: list[tuple[str, int, str]] = []
        self.counter = 0

    def fresh(self) -> str:
        WalletMachine.keys += 1
        return f"key-{WalletMachine.keys}"

    keys = 0

    @rule(
        kind=st.sampled_from(["purchased", "promotional", "refund"]),
        amount=st.integers(1, 6_000),
        days=st.none() | st.integers(1, 45),
    )
    def grant(self, kind: str, amount: int, days: int | None) -> None:
        expires = None if days is None else self.now + timedelta(days=days)
        result = self.wallet.grant(
            self.account, kind, amount, self.fresh(), expires_at=expires, now=self.now
        )
        self.model.grants[result.grant.id] = MGrant(
            result.grant.id, kind, amount, 0, self.now, expires
        )

    def periods_open_first(self) -> None:
        """A charge, batch, hold or settle on an account whose period ended opens the new
        period first (`Book.catch_up`), as the cycle would: the model does what the cycle
        does before it predicts the request."""
        if self.wallet.account(self.account).period_end <= self.now:
            self.monthly_cycle_runs()

    @rule(amount=st.integers(1, 9_000))
    def charge(self, amount: int) -> None:
        self.periods_open_first()
        key = self.fresh()
        expected = self.model.charge(self.now, amount)
        if expected is None:
            with pytest.raises(InsufficientCreditError) as refused:
                self.wallet.charge(self.account, amount, key, now=self.now)
            assert refused.value.extra["available"] < amount
            return
        result = self.wallet.charge(self.account, amount, key, now=self.now)
        assert expected == (result.from_free, result.from_paid)
        self.charged.append((key, amount, to_json(result)))

    @rule(amounts=st.lists(st.integers(1, 4_000), min_size=1, max_size=4))
    def batch(self, amounts: list[int]) -> None:
        self.periods_open_first()
        items = [ChargeItem(self.account, a, self.fresh()) for a in amounts]
        results = self.wallet.charge_batch(items, now=self.now)
        for item, result in zip(items, results, strict=True):
            expected = self.model.charge(self.now, item.amount)
            if expected is None:
                assert isinstance(result, InsufficientCreditError)
            else:
                assert isinstance(result, ChargeResult)
                assert expected == (result.from_free, result.from_paid)

    @precondition(lambda self: self.charged)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        key, amount, stored = data.draw(st.sampled_from(self.charged))
        self.periods_open_first()  # a replay is a charge request: it opens the period too
        again = self.wallet.charge(self.account, amount, key, now=self.now)
        assert again.replayed
        assert to_json(again) == stored
        try:
            self.wallet.charge(self.account, amount + 1, key, now=self.now)
        except IdempotencyConflictError:
            pass
        else:
            raise AssertionError("a different request under a used key was accepted")

    @rule(amount=st.integers(1, 6_000), minutes=st.integers(1, 600))
    def authorize(self, amount: int, minutes: int) -> None:
        self.periods_open_first()
        hold = MHold(0, 0, self.now + timedelta(minutes=minutes))
        expected = self.model.reserve(self.now, hold, amount)
        try:
            result = self.wallet.authorize(
                self.account, amount, self.fresh(), timedelta(minutes=minutes), now=self.now
            )
        except InsufficientCreditError:
            assert not expected
            return
        assert expected
        hold.id = result.hold.id
        self.holds[hold.id] = hold

    def pending(self) -> list[int]:
        return sorted(h.id for h in self.holds.values() if h.state == "pending")

    @precondition(lambda self: self.pending())
    @rule(data=st.data(), amount=st.integers(1, 3_000))
    def extend(self, data: st.DataObject, amount: int) -> None:
        hold = self.holds[data.draw(st.sampled_from(self.pending()))]
        self.periods_open_first()
        expected = self.model.reserve(self.now, hold, amount)
        try:
            result = self.wallet.extend(hold.id, amount, self.fresh(), now=self.now)
        except InsufficientCreditError:
            assert not expected
            return
        assert expected
        assert result.hold.amount == hold.amount

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), actual=st.integers(0, 9_000))
    def settle(self, data: st.DataObject, actual: int) -> None:
        hold = self.holds[data.draw(st.sampled_from(sorted(self.holds)))]
        if hold.state not in ("pending", "expired"):
            return
        self.periods_open_first()
        charged, uncollected = self.model.settle(self.now, hold, actual)
        result = self.wallet.settle(hold.id, actual, self.fresh(), now=self.now)
        assert (result.charged, result.uncollected) == (charged, uncollected)

    @precondition(lambda self: self.pending())
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        hold = self.holds[data.draw(st.sampled_from(self.pending()))]
        self.model.close(self.now, hold, "voided")
        self.wallet.void(hold.id, self.fresh(), now=self.now)

    @rule(minutes=st.integers(1, 60 * 24 * 25))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        due = sorted(
            (h for h in self.holds.values() if h.state == "pending" and h.expires_at <= self.now),
            key=lambda h: (h.expires_at, h.id),
        )
        for hold in due:
            self.model.close(self.now, hold, "expired")
        # The job sweeps the whole database (earlier runs' accounts too), so count >= ours.
        assert self.wallet.expire_holds(now=self.now) >= len(due)
        for g in self.model.grants.values():
            self.model.expire_grant(self.now, g)
        self.wallet.expire_grants(now=self.now)

    @rule()
    def monthly_cycle_runs(self) -> None:
        # Each ended period in order: the old free credit expires (no rollover), the new
        # period's free credit is issued, effective at its start and expiring at its end.
        at = to_micros(self.now)
        while (run := advance(self.wallet.engine, self.account, at)) is not None:
            (free,) = [
                g
                for g in self.wallet.grants(self.account)
                if g.kind == "free_monthly" and g.period_start == run.period_start
            ]
            assert (free.original, free.expires_at) == (FREE, run.period_end)
            self.model.grants[free.id] = MGrant(
                free.id, "free_monthly", FREE, 0, run.period_start, run.period_end
            )
        for g in self.model.grants.values():
            self.model.expire_grant(self.now, g)

    @invariant()
    def balances_agree(self) -> None:
        b = self.wallet.balance(self.account, now=self.now)
        assert (b.free, b.paid, b.held, b.available) == self.model.balances(self.now)
        stored = {g.id: (g.remaining, g.held) for g in self.wallet.grants(self.account)}
        assert stored == {g.id: (g.remaining, g.held) for g in self.model.grants.values()}

    def teardown(self) -> None:
        assert [str(b) for b in self.wallet.verify(now=self.now)] == []


def test_wallet_agrees_with_the_model(engine: sa.Engine) -> None:
    wallet = Wallet(engine, clock=lambda: T0)
    wallet.upsert_plan("tiny", FREE)
    machine = type("Machine", (WalletMachine,), {"wallet": wallet})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
