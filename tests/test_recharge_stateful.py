"""Stateful property test: random charges, auto-recharges that succeed or are declined, number
rentals and monthly cycle runs across month ends, compared with a small in-memory model after
every step (on SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from talktime.config import Settings
from talktime.wallet import InsufficientCreditError, Wallet, rentals
from talktime.wallet import recharge as rc
from talktime.wallet.cycle import run_cycle
from talktime.wallet.payments import TestProvider
from talktime.wallet.periods import add_months, to_micros

import modeldb

D = 1_000_000
FREE = 1 * D
THRESHOLD = 4 * D
TOP_UP = 3 * D
RENT = 2 * D
CFG = Settings(recharge_max_declines=3, recharge_backoff_seconds=60)
STEPS = [timedelta(minutes=1), timedelta(hours=2), timedelta(days=3), timedelta(days=20)]
_examples = itertools.count()


@dataclass
class ModelRecharge:
    due: datetime
    attempts: int = 0


class RechargeCycleMachine(RuleBasedStateMachine):
    """One account per example; each example lives in its own era so accounts never meet."""

    engine: sa.Engine

    def __init__(self) -> None:
        super().__init__()
        era = next(_examples)
        modeldb.empty(self.engine)  # alone in the database, at the same start as any other
        self.now = datetime(2300, 1, 31, 9, tzinfo=UTC)  # a month-end anchor
        self.wallet = Wallet(self.engine, clock=lambda: self.now)
        self.wallet.upsert_plan("stateful", FREE)
        self.provider = TestProvider()
        self.account = self.wallet.create_account(
            "m", "stateful", f"create-{era}", anchor=self.now
        ).account.id
        self.wallet.grant(self.account, "purchased", 5 * D, "seed")
        with self.engine.begin() as conn:
            rc.configure(
                conn,
                self.account,
                enabled=True,
                threshold=THRESHOLD,
                amount=TOP_UP,
                now=to_micros(self.now),
            )
            self.number = rentals.add_number(
                conn,
                self.account,
                f"+1415{era:07d}",
                country="US",
                number_type="local",
                monthly_price=RENT,
                rate_ref="r",
                now=to_micros(self.now),
            ).id
        self.anchor = self.now
        self.months = 1
        self.free = FREE
        self.paid = 5 * D
        self.enabled = True
        self.declines = 0
        self.in_flight: ModelRecharge | None = None
        self.number_active = True
        self.charges = itertools.count()

    @initialize()
    def start(self) -> None:
        pass

    # ---- model helpers ----------------------------------------------------------------------

    def _debit(self, amount: int) -> None:
        from_free = min(self.free, amount)
        self.free -= from_free
        self.paid -= amount - from_free
        self._queue()

    def _queue(self) -> None:
        """The check after any debit, and after auto-recharge is turned on."""
        if self.enabled and self.paid < THRESHOLD and self.in_flight is None:
            self.in_flight = ModelRecharge(due=self.now)

    # ---- rules ------------------------------------------------------------------------------

    @rule(amount=st.integers(1, 4 * D))
    def charge(self, amount: int) -> None:
        key = f"charge-{next(self.charges)}"
        if amount > self.free + self.paid:
            try:
                self.wallet.charge(self.account, amount, key)
            except InsufficientCreditError:
                return
            raise AssertionError("a charge over the available credit went through")
        result = self.wallet.charge(self.account, amount, key)
        assert result.from_free == min(self.free, amount)
        self._debit(amount)

    @rule(step=st.sampled_from(STEPS))
    def time_passes_and_the_cycle_runs(self, step: timedelta) -> None:
        self.now += step
        while add_months(self.anchor, self.months) <= self.now:  # each period, in order
            self.months += 1
            self.free = FREE  # what was left expired: no rollover
            if self.number_active:
                if self.free + self.paid >= RENT:
                    self._debit(RENT)
                else:
                    self.number_active = False
                    event("number suspended")
        run_cycle(self.engine, self.now)

    @rule()
    def recharges_are_processed(self) -> None:
        outcomes = rc.process_recharges(self.engine, self.provider, self.now, settings=CFG)
        expected: list[str] = []
        r = self.in_flight
        if r is not None and r.due <= self.now:
            if r.attempts == 0 and (not self.enabled or self.paid >= THRESHOLD):
                expected, self.in_flight = ["canceled"], None
            elif str(self.account) in self.provider.declining_accounts:
                expected = ["declined"]
                self.declines += 1
                self.in_flight = None
                if self.declines >= CFG.recharge_max_declines:
                    self.enabled = False
                else:
                    wait = 60 * 2 ** (self.declines - 1)
                    self.in_flight = ModelRecharge(due=self.now + timedelta(seconds=wait))
            else:
                expected = ["succeeded"]
                self.paid += TOP_UP
                self.declines = 0
                self.in_flight = None
        assert [o.outcome for o in outcomes] == expected
        for outcome in expected:
            event(f"recharge {outcome}")

    @rule(declining=st.booleans())
    def the_card_starts_or_stops_declining(self, declining: bool) -> None:
        if declining:
            self.provider.decline(str(self.account), "insufficient_funds")
        else:
            self.provider.accept(str(self.account))

    @rule()
    def auto_recharge_is_enabled_again(self) -> None:
        with self.engine.begin() as conn:
            rc.configure(
                conn,
                self.account,
                enabled=True,
                threshold=THRESHOLD,
                amount=TOP_UP,
                now=to_micros(self.now),
            )
        self.enabled = True
        self.declines = 0
        self._queue()

    # ---- checks -----------------------------------------------------------------------------

    @invariant()
    def balances_and_recharges_match_the_model(self) -> None:
        balance = self.wallet.balance(self.account, self.now)
        assert (balance.free, balance.paid) == (self.free, self.paid)
        with self.engine.connect() as conn:
            flying = rc.in_flight(conn, self.account)
            cfg = rc.get_settings_of(conn, self.account)
            status = rentals.get_number(conn, self.account, self.number).status
        assert (flying is None) == (self.in_flight is None)
        if flying is not None and self.in_flight is not None:
            assert flying.next_attempt_at == self.in_flight.due
        assert cfg is not None
        assert (cfg.enabled, cfg.consecutive_declines) == (self.enabled, self.declines)
        assert status == ("active" if self.number_active else "suspended")

    def teardown(self) -> None:
        breaches = [b for b in self.wallet.verify(self.now) if b.account_id == self.account]
        self.wallet.close()  # its idle connection back to the pool, whatever holds the machine
        assert breaches == []


def test_recharges_and_cycles_follow_the_model(engine: sa.Engine) -> None:
    RechargeCycleMachine.engine = engine
    run = RechargeCycleMachine.TestCase
    run.settings = settings(
        max_examples=8,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    run().runTest()
