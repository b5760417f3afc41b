"""A second stateful model of the wallet: the monthly limit together with holds, limit, plan and
status changes, refunds, promotional grants with priorities, batches and replays.

The model is written from the README's rules (Wallet and Payments/monthly cycle sections), not
from the code:

- consumption order `(priority, expires_at with none last, effective_at, id)`; `purchased` and
  `refund` credit is paid, `free_monthly` and `promotional` free;
- every charge and every new reservation (authorize, extend) counts this period's paid usage
  plus the paid credit pending holds reserve as used, and is refused `monthly_limit_reached`
  when its paid part would pass the limit; a settle never checks (usage past the limit is
  recorded); insufficient credit is checked first;
- the usage counter is per period of the account's anchor (a new period starts at zero before
  the cycle runs); a limit change applies at once, to the current period's usage, after
  opening the periods begun before it (as they began, without it);
- `monthly_limit.reached` is queued once per period: when paid usage reaches the limit or when a
  charge or reservation is refused for it;
- a plan change applies from the next period's free credit (the plans table at cycle time);
  a plan or status change made in a period the cycle has not opened yet first opens it (and any
  other period begun since) with the plan and status it began with;
  the cycle issues free credit only to `active` subscriptions; the wallet itself does not refuse
  charges of a `past_due` or `canceled` account (that is the service's policy);
- a refund takes back unspent, unexpired, unreserved credit of a `purchased` grant only;
- a refused request is not stored under its key (it can succeed later); a replay answers the
  stored result byte for byte whatever changed since; a batch item under a key an earlier item
  of the same batch used replays that item's result.

Hypothesis settings: ``PROBE_MODEL_EXAMPLES`` / ``PROBE_MODEL_STEPS`` raise them for a soak.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from talktime.errors import TalktimeError
from talktime.wallet import (
    ChargeItem,
    ChargeResult,
    HoldNotPendingError,
    IdempotencyConflictError,
    InsufficientCreditError,
    InvalidAmountError,
    InvalidRequestError,
    MonthlyLimitReachedError,
    RefundNotAllowedError,
    Wallet,
    to_json,
)
from talktime.wallet.cycle import advance
from talktime.wallet.periods import period_bounds, to_micros

import modeldb
from modelkeys import fresh_or_refused

EXAMPLES = int(os.environ.get("PROBE_MODEL_EXAMPLES", "12"))
STEPS = int(os.environ.get("PROBE_MODEL_STEPS", "30"))

PRIORITY = {"free_monthly": 0, "promotional": 10, "refund": 20, "purchased": 30}
PAID = {"purchased", "refund"}
_examples = itertools.count()


@dataclass
class G:
    id: int
    kind: str
    remaining: int
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    held: int = 0

    @property
    def paid(self) -> bool:
        return self.kind in PAID

    def usable(self, now: datetime) -> bool:
        return self.effective_at <= now and (self.expires_at is None or self.expires_at > now)

    def order(self) -> tuple[Any, ...]:
        last = self.expires_at or datetime.max.replace(tzinfo=UTC)
        return (self.priority, self.expires_at is None, last, self.effective_at, self.id)


@dataclass
class H:
    id: int
    amount: int
    expires_at: datetime
    state: str = "pending"
    allocs: dict[int, int] = field(default_factory=dict)


class RefusedError(Exception):
    """What the model says the wallet must answer instead of a result."""

    def __init__(self, error: type[TalktimeError]) -> None:
        super().__init__(error.__name__)
        self.error = error


class Model:
    """The account as the README describes it."""

    def __init__(self, anchor: datetime) -> None:
        self.anchor = anchor
        self.grants: dict[int, G] = {}
        self.holds: dict[int, H] = {}
        self.limit: int | None = None
        self.usage: dict[datetime, int] = {}
        self.flagged: set[datetime] = set()
        self.plan = ""
        self.status = "active"

    # ---- reads ------------------------------------------------------------------------------

    def period(self, now: datetime) -> datetime:
        return period_bounds(self.anchor, now)[0]

    def live(self, now: datetime) -> list[G]:
        return sorted(
            (g for g in self.grants.values() if g.usable(now) and g.remaining - g.held > 0),
            key=G.order,
        )

    def available(self, now: datetime) -> int:
        return sum(g.remaining - g.held for g in self.grants.values() if g.usable(now))

    def balances(self, now: datetime) -> tuple[int, int, int, int]:
        free = paid = held = 0
        for g in self.grants.values():
            amount = g.remaining if g.usable(now) else g.held
            held += g.held
            if g.paid:
                paid += amount
            else:
                free += amount
        return free, paid, held, self.available(now)

    def reserved_paid(self) -> int:
        allocs = [(gid, a) for h in self.holds.values() for gid, a in h.allocs.items()]
        return sum(a for gid, a in allocs if self.grants[gid].paid)

    # ---- rules ------------------------------------------------------------------------------

    def plan_takes(self, now: datetime, amount: int) -> list[tuple[G, int]]:
        if amount > self.available(now):
            raise RefusedError(InsufficientCreditError)
        takes, rest = [], amount
        for g in self.live(now):
            t = min(g.remaining - g.held, rest)
            if t:
                takes.append((g, t))
                rest -= t
        assert rest == 0
        return takes

    def check_limit(self, now: datetime, paid: int) -> None:
        if self.limit is None or paid == 0:
            return
        used = self.usage.get(self.period(now), 0)
        if used + self.reserved_paid() + paid > self.limit:
            self.flagged.add(self.period(now))
            raise RefusedError(MonthlyLimitReachedError)

    def add_usage(self, now: datetime, paid: int) -> None:
        if paid == 0:
            return
        p = self.period(now)
        self.usage[p] = self.usage.get(p, 0) + paid
        if self.limit is not None and self.usage[p] >= self.limit:
            self.flagged.add(p)

    def charge(self, now: datetime, amount: int) -> tuple[int, int]:
        if amount <= 0:
            raise RefusedError(InvalidAmountError)
        takes = self.plan_takes(now, amount)
        paid = sum(t for g, t in takes if g.paid)
        self.check_limit(now, paid)
        for g, t in takes:
            g.remaining -= t
        self.add_usage(now, paid)
        return amount - paid, paid

    def reserve(self, now: datetime, hold: H, amount: int) -> None:
        takes = self.plan_takes(now, amount)
        self.check_limit(now, sum(t for g, t in takes if g.paid))
        for g, t in takes:
            g.held += t
            hold.allocs[g.id] = hold.allocs.get(g.id, 0) + t
        hold.amount += amount

    def expire_grant(self, now: datetime, g: G) -> None:
        if g.expires_at is not None and g.expires_at <= now:
            g.remaining = g.held

    def release(self, hold: H) -> list[G]:
        out = []
        for gid, a in hold.allocs.items():
            self.grants[gid].held -= a
            out.append(self.grants[gid])
        return sorted(out, key=G.order)

    def settle(self, now: datetime, hold: H, actual: int) -> tuple[int, int, int]:
        released = self.release(hold)
        rest, paid = actual, 0
        sources = [(g, hold.allocs[g.id]) for g in released]
        sources += [(g, g.remaining - g.held) for g in self.live(now)]
        for g, cap in sources:
            t = min(cap, g.remaining - g.held, rest)
            if t > 0:
                g.remaining -= t
                rest -= t
                paid += t if g.paid else 0
        for g in released:
            self.expire_grant(now, g)
        hold.allocs, hold.state = {}, "settled"
        self.add_usage(now, paid)
        return actual - rest, paid, rest

    def close(self, now: datetime, hold: H, state: str) -> None:
        for g in self.release(hold):
            self.expire_grant(now, g)
        hold.allocs, hold.state = {}, state

    def refund(self, now: datetime, g: G, amount: int) -> None:
        if g.kind != "purchased":
            raise RefusedError(RefundNotAllowedError)
        # unspent credit: what is left and not reserved, effective yet or not (a grant not yet
        # effective is refundable in full), nothing once expired
        expired = g.expires_at is not None and g.expires_at <= now
        unspent = 0 if expired else g.remaining - g.held
        if amount > unspent:
            raise RefusedError(RefundNotAllowedError)
        g.remaining -= amount


@dataclass
class Done:
    """A request that succeeded: replaying it must answer ``text`` again."""

    call: str
    args: tuple[Any, ...]
    text: str


class LimitMachine(RuleBasedStateMachine):
    """One account per example, in its own era (so the sweeping jobs never meet old accounts
    at an earlier time)."""

    wallet: Wallet

    @initialize(
        anchor_day=st.sampled_from([1, 15, 29, 31]),
        limit=st.none() | st.integers(0, 20_000),
        free=st.integers(0, 8_000),
        bought=st.integers(0, 30_000),
    )
    def start(self, anchor_day: int, limit: int | None, free: int, bought: int) -> None:
        self.era = next(_examples)
        modeldb.empty(self.wallet.engine)  # alone in the database, at the same start as any
        self.now = datetime(2200, 1, anchor_day, 10, tzinfo=UTC)
        self.keys = itertools.count()
        self.plans = {f"a{self.era}": free, f"b{self.era}": 2 * free + 1}
        for name, credit in self.plans.items():
            self.wallet.upsert_plan(name, credit)
        self.model = Model(self.now)
        self.model.limit = limit
        self.model.plan = f"a{self.era}"
        created = self.wallet.create_account(
            "L", self.model.plan, self.key(), anchor=self.now, monthly_limit=limit, now=self.now
        )
        self.account = created.account.id
        issued = self.wallet.grants(self.account)
        if free == 0:  # a plan without free credit issues no grant
            assert issued == []
        else:
            (g,) = issued
            assert (g.kind, g.original, g.expires_at) == (
                "free_monthly",
                free,
                period_bounds(self.now, self.now)[1],
            )
            self.model.grants[g.id] = G(g.id, g.kind, free, 0, g.effective_at, g.expires_at)
        self.done: list[Done] = []
        self.refused_keys: list[str] = []
        if bought:
            self.grant("purchased", bought, None, 0, None)

    def key(self) -> str:
        return f"k{self.era}-{next(self.keys)}"

    def some_key(self, data: st.DataObject) -> str:
        """A fresh key, or one a refused request used (it was not stored, so it is free)."""
        return fresh_or_refused(data, self.refused_keys, self.key)

    def expect(self, key: str, call: Any, model_step: Any) -> Any:
        """Run the model step, then the wallet call; they must agree on success or refusal."""
        try:
            expected = model_step()
        except RefusedError as refusal:
            with pytest.raises(refusal.error):
                call()
            event(f"refused {refusal.error.code}")
            self.refused_keys.append(key)
            return None
        return expected, call()

    # ---- credit -----------------------------------------------------------------------------

    @rule(
        kind=st.sampled_from(["purchased", "promotional", "refund", "purchased"]),
        amount=st.integers(1, 20_000),
        days=st.none() | st.integers(1, 50),
        delay=st.sampled_from([0, 0, 0, 3]),
        priority=st.none() | st.sampled_from([0, 1, 5, 10, 25, 30, 40]),
    )
    def grant(
        self, kind: str, amount: int, days: int | None, delay: int, priority: int | None
    ) -> None:
        effective = self.now + timedelta(days=delay)
        expires = None if days is None else effective + timedelta(days=days)
        key = self.key()
        if priority == 0:  # free monthly credit's: refused for any other kind, nothing changes
            with pytest.raises(InvalidRequestError, match="priority 0"):
                self.wallet.grant(self.account, kind, amount, key, priority=0, now=self.now)
            return
        result = self.wallet.grant(
            self.account,
            kind,
            amount,
            key,
            expires_at=expires,
            effective_at=effective if delay else None,
            priority=priority,
            now=self.now,
        )
        prio = PRIORITY[kind] if priority is None else priority
        options = {
            "expires_at": expires,
            "effective_at": effective if delay else None,
            "priority": priority,
        }
        self.model.grants[result.grant.id] = G(
            result.grant.id, kind, amount, prio, effective, expires
        )
        self.done.append(
            Done(
                "grant",
                (self.account, kind, amount, key, options),
                to_json(result),
            )
        )

    @rule(data=st.data(), amount=st.integers(1, 5_000))
    def charge(self, data: st.DataObject, amount: int) -> None:
        self.cycle_runs()  # a charging request opens the periods begun first (Book.catch_up)
        key = self.some_key(data)
        got = self.expect(
            key,
            lambda: self.wallet.charge(self.account, amount, key, now=self.now),
            lambda: self.model.charge(self.now, amount),
        )
        if got is None:
            return
        (from_free, from_paid), result = got
        assert (result.from_free, result.from_paid) == (from_free, from_paid)
        self.done.append(Done("charge", (self.account, amount, key), to_json(result)))

    @rule(data=st.data(), amounts=st.lists(st.integers(0, 4_000), min_size=1, max_size=5))
    def batch(self, data: st.DataObject, amounts: list[int]) -> None:
        self.cycle_runs()  # a charging request opens the periods begun first (Book.catch_up)
        items: list[ChargeItem] = []
        for a in amounts:
            repeat = data.draw(st.integers(0, 5), label="repeat an item") if items else 9
            if repeat == 0:  # the same request again
                items.append(data.draw(st.sampled_from(items), label="repeated item"))
            elif repeat == 1:  # another amount under an earlier item's key
                earlier = data.draw(st.sampled_from(items), label="earlier item")
                items.append(ChargeItem(self.account, earlier.amount + 1, earlier.key))
            else:
                items.append(ChargeItem(self.account, a, self.some_key(data)))
        results = self.wallet.charge_batch(items, now=self.now)
        answered: dict[str, tuple[int, ChargeResult]] = {}
        for item, result in zip(items, results, strict=True):
            if item.key in answered:
                amount, first = answered[item.key]
                if amount != item.amount:
                    assert isinstance(result, IdempotencyConflictError), result
                    continue
                assert isinstance(result, ChargeResult), result
                assert result.replayed
                assert to_json(result) == to_json(first)
                continue
            try:
                expected = self.model.charge(self.now, item.amount)
            except RefusedError as refusal:
                refused = refusal.error
            else:
                refused = None
            if refused is not None:
                assert isinstance(result, refused), (item, result)
                if item.key not in self.refused_keys:
                    self.refused_keys.append(item.key)
                continue
            assert isinstance(result, ChargeResult), (item, result)
            assert (result.from_free, result.from_paid) == expected
            answered[item.key] = (item.amount, result)
            if item.key in self.refused_keys:
                self.refused_keys.remove(item.key)
            self.done.append(Done("charge", (self.account, item.amount, item.key), to_json(result)))

    # ---- holds ------------------------------------------------------------------------------

    def pending(self, *, live: bool) -> list[int]:
        return sorted(
            h.id
            for h in self.model.holds.values()
            if h.state == "pending" and (not live or h.expires_at > self.now)
        )

    @rule(data=st.data(), amount=st.integers(1, 5_000), minutes=st.integers(1, 60 * 24 * 40))
    def authorize(self, data: st.DataObject, amount: int, minutes: int) -> None:
        self.cycle_runs()  # a charging request opens the periods begun first (Book.catch_up)
        key = self.some_key(data)
        ttl = timedelta(minutes=minutes)
        hold = H(0, 0, self.now + ttl)
        got = self.expect(
            key,
            lambda: self.wallet.authorize(self.account, amount, key, ttl, now=self.now),
            lambda: self.model.reserve(self.now, hold, amount),
        )
        if got is None:
            return
        _, result = got
        hold.id = result.hold.id
        self.model.holds[hold.id] = hold
        self.done.append(Done("authorize", (self.account, amount, key, ttl), to_json(result)))

    @precondition(lambda self: self.pending(live=False))
    @rule(data=st.data(), amount=st.integers(1, 4_000))
    def extend(self, data: st.DataObject, amount: int) -> None:
        self.cycle_runs()  # a charging request opens the periods begun first (Book.catch_up)
        hold = self.model.holds[data.draw(st.sampled_from(self.pending(live=False)))]
        key = self.some_key(data)

        def step() -> None:
            if hold.expires_at <= self.now:
                raise RefusedError(HoldNotPendingError)
            self.model.reserve(self.now, hold, amount)

        got = self.expect(key, lambda: self.wallet.extend(hold.id, amount, key, now=self.now), step)
        if got is None:
            return
        _, result = got
        assert result.hold.amount == hold.amount
        self.done.append(Done("extend", (hold.id, amount, key), to_json(result)))

    @precondition(lambda self: self.model.holds)
    @rule(data=st.data(), actual=st.integers(0, 9_000))
    def settle(self, data: st.DataObject, actual: int) -> None:
        self.cycle_runs()  # a charging request opens the periods begun first (Book.catch_up)
        hold = self.model.holds[data.draw(st.sampled_from(sorted(self.model.holds)))]
        key = self.some_key(data)

        def step() -> tuple[int, int, int]:
            if hold.state not in ("pending", "expired"):
                raise RefusedError(HoldNotPendingError)
            return self.model.settle(self.now, hold, actual)

        got = self.expect(key, lambda: self.wallet.settle(hold.id, actual, key, now=self.now), step)
        if got is None:
            return
        expected, result = got
        assert (result.charged, result.from_paid, result.uncollected) == expected
        self.done.append(Done("settle", (hold.id, actual, key), to_json(result)))

    @precondition(lambda self: self.model.holds)
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        hold = self.model.holds[data.draw(st.sampled_from(sorted(self.model.holds)))]
        key = self.some_key(data)

        def step() -> None:
            if hold.state != "pending":
                raise RefusedError(HoldNotPendingError)
            self.model.close(self.now, hold, "voided")

        got = self.expect(key, lambda: self.wallet.void(hold.id, key, now=self.now), step)
        if got is not None:
            self.done.append(Done("void", (hold.id, key), to_json(got[1])))

    # ---- refunds ----------------------------------------------------------------------------

    @precondition(lambda self: len(self.model.grants) > 1)
    @rule(data=st.data(), part=st.sampled_from([1, 2, 3, 4]))
    def refund(self, data: st.DataObject, part: int) -> None:
        g = self.model.grants[data.draw(st.sampled_from(sorted(self.model.grants)))]
        amount = max(1, (g.remaining - g.held) * part // 3)
        key = self.some_key(data)
        got = self.expect(
            key,
            lambda: self.wallet.refund(self.account, g.id, amount, key, now=self.now),
            lambda: self.model.refund(self.now, g, amount),
        )
        if got is not None:
            self.done.append(Done("refund", (self.account, g.id, amount, key), to_json(got[1])))

    # ---- settings ---------------------------------------------------------------------------

    @rule(limit=st.none() | st.integers(0, 25_000))
    def limit_changes(self, limit: int | None) -> None:
        self.cycle_runs()  # the change opens the periods begun before it: it applies from now
        self.wallet.set_monthly_limit(self.account, limit, self.key(), now=self.now)
        self.model.limit = limit

    @rule(data=st.data())
    def plan_changes(self, data: st.DataObject) -> None:
        plan = data.draw(st.sampled_from(sorted(self.plans)))
        self.cycle_runs()  # the change opens the periods begun before it, as they began
        self.wallet.set_plan(self.account, plan, self.key(), now=self.now)
        self.model.plan = plan

    @rule(data=st.data(), credit=st.integers(0, 8_000))
    def plan_credit_changes(self, data: st.DataObject, credit: int) -> None:
        plan = data.draw(st.sampled_from(sorted(self.plans)))
        self.wallet.upsert_plan(plan, credit, now=self.now)
        self.plans[plan] = credit

    @rule(status=st.sampled_from(["active", "past_due", "canceled"]))
    def status_changes(self, status: str) -> None:
        was = self.model.status
        self.cycle_runs()  # the change opens the periods begun before it, as they began
        self.wallet.set_status(self.account, status, self.key(), now=self.now)
        self.model.status = status
        start, end = period_bounds(self.model.anchor, self.now)
        credit = self.plans[self.model.plan]
        had = any(
            g.kind == "free_monthly" and g.effective_at == start for g in self.model.grants.values()
        )
        if status != "active" or was == "active" or start == self.model.anchor or had or not credit:
            return  # only a period the cycle opened while the account was not active: once
        (free,) = [
            g
            for g in self.wallet.grants(self.account)
            if g.kind == "free_monthly" and g.period_start == start
        ]
        assert (free.original, free.effective_at, free.expires_at) == (credit, start, end)
        self.model.grants[free.id] = G(free.id, "free_monthly", credit, 0, start, end)

    # ---- time -------------------------------------------------------------------------------

    @rule(minutes=st.sampled_from([1, 90, 60 * 24 * 3, 60 * 24 * 12, 60 * 24 * 33]))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def hold_job_runs(self) -> None:
        due = sorted(
            (
                h
                for h in self.model.holds.values()
                if h.state == "pending" and h.expires_at <= self.now
            ),
            key=lambda h: (h.expires_at, h.id),
        )
        for hold in due:
            self.model.close(self.now, hold, "expired")
        assert self.wallet.expire_holds(now=self.now) >= len(due)

    @rule()
    def grant_job_runs(self) -> None:
        for g in self.model.grants.values():
            self.model.expire_grant(self.now, g)
        self.wallet.expire_grants(now=self.now)

    @rule()
    def cycle_runs(self) -> None:
        """Each ended period in order: the old free credit expires, the new one is issued (of
        the plan in force now, only to an active subscription)."""
        at = to_micros(self.now)
        opened = False
        while (run := advance(self.wallet.engine, self.account, at)) is not None:
            opened = True
            credit = self.plans[self.model.plan] if self.model.status == "active" else None
            found = [
                g
                for g in self.wallet.grants(self.account)
                if g.kind == "free_monthly" and g.period_start == run.period_start
            ]
            if not credit:  # inactive, or a plan without free credit: no grant
                assert found == []
                assert run.granted == 0
                continue
            (free,) = found
            assert (free.original, free.effective_at, free.expires_at) == (
                credit,
                run.period_start,
                run.period_end,
            )
            self.model.grants[free.id] = G(
                free.id, "free_monthly", credit, 0, run.period_start, run.period_end
            )
        if opened:
            for g in self.model.grants.values():
                self.model.expire_grant(self.now, g)

    # ---- replays ----------------------------------------------------------------------------

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """The same request again, whatever changed since: the stored answer, nothing moves;
        the same key with another amount is a conflict."""
        done = data.draw(st.sampled_from(self.done))
        self.cycle_runs()  # a replayed charge opens the periods begun first too
        w, now = self.wallet, self.now
        calls = {
            "charge": lambda a, n, k, d=0: w.charge(a, n + d, k, now=now),
            "grant": lambda a, kind, n, k, kw, d=0: w.grant(a, kind, n + d, k, now=now, **kw),
            "authorize": lambda a, n, k, ttl, d=0: w.authorize(a, n + d, k, ttl, now=now),
            "extend": lambda h, n, k, d=0: w.extend(h, n + d, k, now=now),
            "settle": lambda h, n, k, d=0: w.settle(h, n + d, k, now=now),
            "void": lambda h, k, d=0: w.void(h, k, now=now),
            "refund": lambda a, g, n, k, d=0: w.refund(a, g, n + d, k, now=now),
        }
        again = calls[done.call](*done.args)
        assert again.replayed
        assert to_json(again) == done.text
        if done.call != "void":
            with pytest.raises(IdempotencyConflictError):
                calls[done.call](*done.args, d=1)

    # ---- checks -----------------------------------------------------------------------------

    @invariant()
    def wallet_agrees_with_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        b = self.wallet.balance(self.account, now=self.now)
        assert (b.free, b.paid, b.held, b.available) == self.model.balances(self.now)
        assert b.monthly_limit == self.model.limit
        assert b.period_usage == self.model.usage.get(self.model.period(self.now), 0)
        stored = {g.id: (g.remaining, g.held) for g in self.wallet.grants(self.account)}
        assert stored == {g.id: (g.remaining, g.held) for g in self.model.grants.values()}
        flagged = self.wallet.events(self.account, type="monthly_limit.reached")
        assert len(flagged) == len(self.model.flagged), (flagged, self.model.flagged)

    def teardown(self) -> None:
        if hasattr(self, "model"):
            self.cycle_runs()
            self.hold_job_runs()
            breaches = [b for b in self.wallet.verify(now=self.now) if b.account_id == self.account]
            assert [str(b) for b in breaches] == []


def test_the_wallet_keeps_the_limit_holds_refunds_and_plans_of_the_model(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    LimitMachine.wallet = wallet
    run = LimitMachine.TestCase
    run.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    try:
        run().runTest()
    finally:
        wallet.close()
