"""Statements over generated months of traffic equal the ledger to the micro-unit; JSON, CSV and
a PDF that renders (checked as a PNG)."""

from __future__ import annotations

import csv
import io
import itertools
import random
from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium
import pytest
import sqlalchemy as sa

from talktime import money
from talktime.errors import TalktimeError
from talktime.ops import pdf
from talktime.ops.clock import from_datetime
from talktime.ops.statements import InvalidPeriodError, period_bounds, statement
from talktime.store.wallet_tables import ledger
from talktime.wallet import Wallet
from talktime.wallet.cycle import run_cycle

SEPT = datetime(2026, 9, 1, tzinfo=UTC)


def generate(engine: sa.Engine, seed: int) -> int:
    """An account with three months (Sep-Nov 2026) of random purchases, SMS, calls, rentals,
    refunds and promotional credit that expires; returns the account id."""
    rng = random.Random(seed)
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", 10 * money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme", "starter", "create", now=SEPT).account.id
    purchased = wallet.grant(
        account, "purchased", 50 * money.DOLLAR, "buy-1", now=SEPT + timedelta(hours=1)
    ).grant.id
    wallet.grant(
        account,
        "promotional",
        3 * money.DOLLAR,
        "promo",
        expires_at=SEPT + timedelta(days=20),
        now=SEPT + timedelta(hours=2),
    )
    at = SEPT + timedelta(hours=3)
    end = datetime(2026, 11, 30, tzinfo=UTC)
    n = 0
    while at < end:
        day = at.date()
        at += timedelta(minutes=rng.randint(60, 1200))
        if at.date() != day:
            run_cycle(engine, at)
            wallet.expire_grants(at)
        n += 1
        pick = rng.random()
        try:
            if pick < 0.5:
                amount = rng.choice([10_000, 20_000, 8_300, 37_500])
                wallet.charge(account, amount, f"sms-{n}", reference=f"msg_{n}", now=at)
            elif pick < 0.8:
                hold = wallet.authorize(
                    account, 200_000, f"auth-{n}", timedelta(hours=1), reference=f"call_{n}", now=at
                ).hold.id
                wallet.settle(hold, rng.randint(0, 200_000), f"settle-{n}", now=at)
            elif pick < 0.9:
                wallet.charge(account, money.DOLLAR, f"num-{n}", reference=f"number:{n}", now=at)
            elif pick < 0.95:
                wallet.grant(account, "purchased", 5 * money.DOLLAR, f"buy-{n}", now=at)
            else:
                wallet.refund(account, purchased, 10_000, f"refund-{n}", now=at)
        except TalktimeError:
            pass  # short credit or nothing left to refund: refused, nothing written
    return account


def ledger_sum(engine: sa.Engine, account: int, kinds: set[str], until: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(ledger.c.amount), 0)).where(
                    ledger.c.account_id == account,
                    ledger.c.kind.in_(kinds),
                    ledger.c.created_at < until,
                )
            ).scalar_one()
        )


BALANCE = {"grant", "recharge", "usage", "expiry", "refund"}


def test_statements_of_generated_months_equal_the_ledger(engine: sa.Engine) -> None:
    account = generate(engine, 1)
    months = ["2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    statements = [statement(engine, account, m) for m in months]
    for s in statements:
        start, end = period_bounds(s.period)
        moved = sum(line.total for line in s.lines)
        assert s.opening_free + s.opening_paid + moved == s.closing_free + s.closing_paid
        assert s.closing_free + s.closing_paid == ledger_sum(engine, account, BALANCE, end)
        assert s.opening_free + s.opening_paid == ledger_sum(engine, account, BALANCE, start)
        for kind, section in [("usage", "usage"), ("expiry", "expiry"), ("refund", "refund")]:
            in_month = ledger_sum(engine, account, {kind}, end) - ledger_sum(
                engine, account, {kind}, start
            )
            assert sum(line.total for line in s.lines if line.section == section) == in_month
    for before, after in itertools.pairwise(statements):
        assert (before.closing_free, before.closing_paid) == (
            after.opening_free,
            after.opening_paid,
        )
    assert statements[0].lines == ()
    assert statements[0].closing_free + statements[0].closing_paid == 0
    september = statements[1]
    labels = {line.label for line in september.lines}
    assert {"Free monthly credit", "Purchased credit", "SMS", "Calls"} <= labels
    balance = Wallet(engine).balance(account, now=datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert (statements[-1].closing_free, statements[-1].closing_paid) == (
        balance.free,
        balance.paid,
    )


def test_unused_free_credit_expires_into_the_next_months_statement(engine: sa.Engine) -> None:
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", 10 * money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme", "starter", "create", now=SEPT).account.id
    wallet.charge(account, 30_000, "sms", reference="msg_1", now=SEPT + timedelta(days=3))
    run_cycle(engine, datetime(2026, 10, 1, 0, 5, tzinfo=UTC))
    september = statement(engine, account, "2026-09")
    assert [(line.label, line.free, line.paid) for line in september.lines] == [
        ("Free monthly credit", 10 * money.DOLLAR, 0),
        ("SMS", -30_000, 0),
    ]
    assert (september.closing_free, september.closing_paid) == (10 * money.DOLLAR - 30_000, 0)
    october = statement(engine, account, "2026-10")
    assert {(line.label, line.free) for line in october.lines} == {
        ("Free monthly credit", 10 * money.DOLLAR),
        ("Expired free credit", -(10 * money.DOLLAR - 30_000)),
    }
    assert october.closing_free == 10 * money.DOLLAR


def small_month(engine: sa.Engine) -> int:
    """September 2026: free credit, a purchase, SMS (one priced finer than a cent), a call."""
    wallet = Wallet(engine)
    wallet.upsert_plan("starter", 10 * money.DOLLAR, now=SEPT)
    account = wallet.create_account("Acme & Söhne", "starter", "create", now=SEPT).account.id
    wallet.grant(account, "purchased", 25 * money.DOLLAR, "buy", now=SEPT + timedelta(days=1))
    for n in range(40):
        at = SEPT + timedelta(days=2, hours=n)
        wallet.charge(account, 8_550, f"sms-{n}", reference=f"msg_{n}", now=at)
    hold = wallet.authorize(
        account,
        500_000,
        "auth",
        timedelta(hours=1),
        reference="call_1",
        now=SEPT + timedelta(days=5),
    ).hold.id
    wallet.settle(hold, 130_000, "settle", now=SEPT + timedelta(days=5))
    return account


def test_statement_json_and_csv_carry_exact_decimal_strings(engine: sa.Engine) -> None:
    account = small_month(engine)
    s = statement(engine, account, "2026-09")
    doc = s.to_dict()
    assert doc["period"] == "2026-09"
    sms = next(line for line in doc["lines"] if line["label"] == "SMS")
    assert sms["free"] == "-0.3420"  # 40 x $0.00855, not rounded to cents
    assert money.parse(doc["closing"]["total"], allow_negative=True) == (
        s.closing_free + s.closing_paid
    )
    rows = list(csv.DictReader(io.StringIO(s.to_csv())))
    assert rows[0]["section"] == "opening"
    closing = next(r for r in rows if r["section"] == "closing")
    moved = sum(
        money.parse(r["total"], allow_negative=True)
        for r in rows
        if r["section"] not in ("opening", "closing", "uncollected")
    )
    opening = money.parse(rows[0]["total"], allow_negative=True)
    assert opening + moved == money.parse(closing["total"], allow_negative=True)


def test_the_pdf_statement_renders_to_a_page_with_its_figures(engine: sa.Engine) -> None:
    account = small_month(engine)
    s = statement(engine, account, "2026-09")
    data = pdf.render(s)
    assert data.startswith(b"%PDF-")
    document = pdfium.PdfDocument(data)
    assert len(document) == 1
    page = document[0]
    text = page.get_textpage().get_text_range()
    assert "Statement 2026-09" in text
    assert "Closing balance" in text
    assert money.format(s.closing_free + s.closing_paid, 2) in text
    image = page.render(scale=1).to_pil()
    assert image.size[0] > 500
    histogram = image.convert("L").histogram()
    dark = sum(histogram[:128])
    assert dark > 1000, "the page has visible text"


def test_periods_are_calendar_months_and_bad_ones_are_refused() -> None:
    start, end = period_bounds("2026-12")
    assert start == from_datetime(datetime(2026, 12, 1, tzinfo=UTC))
    assert end == from_datetime(datetime(2027, 1, 1, tzinfo=UTC))
    assert period_bounds("9999-11")[1] == from_datetime(datetime(9999, 12, 1, tzinfo=UTC))
    for bad in ["2026-13", "2026-00", "26-10", "2026/10", "", "2026-1", "1969-12", "9999-12"]:
        with pytest.raises(InvalidPeriodError):
            period_bounds(bad)
