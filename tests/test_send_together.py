"""The group committer's pass over a batch of sends (`messages.send_unit`, `run_together`)
answers every send as it would have been answered alone, writes the same books, and hands a
batch it cannot take (an account whose period ended) to the one-by-one path; on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from talktime.errors import TalktimeError
from talktime.service import messages
from talktime.service.common import now_micros
from talktime.service.groupcommit import _Pending, _run_batch
from talktime.service.idempotency import StoredResponse, _Refused
from talktime.store.reuse import ConnectionStack
from talktime.wallet import Wallet

import apikit
from apikit import Tenant, tenant

US_TO = "+14155550111"
GB_TO = "+447700900123"


@dataclass
class World:
    """Two accounts on the tiny card with five cents each once their number's first month is
    paid; the second may use three cents more of paid credit this period (its monthly limit);
    each has a user who may not send SMS."""

    tenants: list[Tenant]
    restricted: list[str]


def _world(api: Any, numbers: tuple[str, str]) -> World:
    tenants, restricted = [], []
    for i, number in enumerate(numbers):
        t = tenant(api, plan="trial", credit="1.05", number=number, rate_card="tiny")
        response = api.post(
            "/v1/users", json={"name": "Bo", "restrictions": ["sms.send"]}, headers=t.auth
        )
        assert response.status_code == 201, response.text
        restricted.append(response.json()["id"])
        if i == 1:
            response = api.put(
                "/v1/settings/monthly-limit", json={"monthly_limit": "1.03"}, headers=t.auth
            )
            assert response.status_code == 200, response.text
        tenants.append(t)
    return World(tenants, restricted)


Step = tuple[str, int, int]
"""(kind, account index or earlier step, text length)."""


def _requests(world: World, steps: list[Step]) -> list[tuple[int, messages.SendSms, str]]:
    """The script's sends as (account id, request, key); ``dup`` repeats an earlier step,
    ``clash`` reuses its key for another text."""
    out: list[tuple[int, messages.SendSms, str]] = []
    for n, (kind, which, length) in enumerate(steps):
        if kind in ("dup", "clash") and out:
            account_id, req, key = out[which % len(out)]
            if kind == "clash":
                req = messages.SendSms(req.from_, req.to, req.text + "!", req.user)
            out.append((account_id, req, key))
            continue
        t = world.tenants[which % 2]
        assert t.number is not None
        user = world.restricted[which % 2] if kind == "restricted" else t.user
        text = "x" * length
        to = GB_TO if kind == "cross" else US_TO
        media = ("https://example.com/a.png",) if kind == "mms" else ()
        out.append((t.account_id, messages.SendSms(t.number, to, text, user, media), f"k{n}"))
    return out


def _outcome(outcome: tuple[bool, Any]) -> Any:
    """An outcome without what differs between two worlds (ids, numbers, times)."""
    ok, value = outcome
    if isinstance(value, StoredResponse):
        body = json.loads(value.body)
        kept = {k: v for k, v in body.items() if k not in ("id", "from", "user", "created_at")}
        return ("answered", value.status, value.replayed, kept)
    refusal = value.refusal if isinstance(value, _Refused) else value
    assert isinstance(refusal, TalktimeError), repr(refusal)
    # the money facts, and the field the refusal names (`text`, `media`, `to`...)
    facts = {
        k: v for k, v in refusal.extra.items() if k in ("needed", "available", "limit", "field")
    }
    return ("refused", ok, refusal.code, refusal.status, facts)


def _books(engine: sa.Engine, account_id: int) -> Any:
    with engine.connect() as conn:
        ledger = conn.execute(
            sa.text("SELECT kind, amount FROM ledger WHERE account_id = :a ORDER BY id"),
            {"a": account_id},
        ).all()
        events = conn.execute(
            sa.text("SELECT type FROM outbox WHERE account_id = :a ORDER BY id"), {"a": account_id}
        ).all()
        sent = conn.execute(
            sa.text(
                "SELECT segments, amount FROM messages WHERE account_id = :a ORDER BY created_at"
            ),
            {"a": account_id},
        ).all()
    return [tuple(r) for r in ledger], [r[0] for r in events], sorted(tuple(r) for r in sent)


def _run(engine: sa.Engine, units: list[Any], together: bool) -> tuple[list[Any], bool | None]:
    stack = ConnectionStack(engine, keep=1)
    try:
        if together:
            outcomes, _, ran = _run_batch(stack, [_Pending(u, lambda ok, v: None) for u in units])
            return outcomes, ran
        alone = [_run_batch(stack, [_Pending(u, lambda ok, v: None)]) for u in units]
        assert all(ran is None for _, _, ran in alone)
        return [outcomes[0] for outcomes, _, _ in alone], None
    finally:
        stack.close()


EVERY_PATH: list[Step] = [
    *[("ok", 1, 5)] * 4,  # the fourth passes the monthly limit
    *[("ok", 0, 5)] * 6,  # the sixth finds no credit
    ("dup", 0, 0),
    ("clash", 1, 0),
    ("mms", 0, 5),
    ("cross", 1, 5),
    ("restricted", 0, 5),
    ("long", 1, 200),
]
KINDS = st.sampled_from(["ok", "ok", "ok", "long", "mms", "cross", "restricted", "dup", "clash"])
STEPS = st.lists(
    st.tuples(KINDS, st.integers(0, 20), st.sampled_from([5, 5, 200])), min_size=2, max_size=14
)


def test_a_batch_of_sends_in_one_pass_answers_and_books_as_the_sends_alone_would(
    api: Any,
) -> None:
    apikit.import_tiny_card(api)
    app = api.app
    engine, app_settings = app.state.engine, app.state.settings
    numbers = iter(range(10_000))

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=STEPS)
    @example(steps=EVERY_PATH)
    def check(steps: list[Step]) -> None:
        results = []
        for together in (True, False):
            n = next(numbers)
            world = _world(api, (f"+1415202{n:04d}", f"+1415203{n:04d}"))
            units = [
                messages.send_unit(app_settings, account_id, req, key)
                for account_id, req, key in _requests(world, steps)
            ]
            outcomes, ran = _run(engine, units, together)
            assert ran is (True if together else None)
            books = [_books(engine, t.account_id) for t in world.tenants]
            balances = [t.balance() for t in world.tenants]
            results.append(([_outcome(o) for o in outcomes], books, balances))
        assert results[0] == results[1]
        codes.update(o[2] for o in results[0][0] if o[0] == "refused")

    codes: set[str] = set()
    check()
    assert {"insufficient_credit", "monthly_limit_reached", "idempotency_conflict"} <= codes
    assert Wallet(engine).verify() == []


def test_a_key_sent_twice_in_one_pass_charges_once_and_answers_both_alike(api: Any) -> None:
    t = tenant(api, credit="1.00")
    assert t.number is not None
    settings_ = api.app.state.settings
    req = messages.SendSms(t.number, US_TO, "hello", t.user)
    key = uuid.uuid4().hex
    units = [messages.send_unit(settings_, t.account_id, req, key) for _ in range(3)]
    outcomes, ran = _run(api.app.state.engine, units, together=True)
    assert ran is True
    answers = [value for ok, value in outcomes]
    assert [a.replayed for a in answers] == [False, True, True]
    assert {a.body for a in answers} == {answers[0].body}
    assert len([e for e in t.ledger() if str(e["reference"]).startswith("msg_")]) == 1
    # a later pass answers the key from its stored response, and refuses it for another text
    other = messages.SendSms(t.number, US_TO, "hello again", t.user)
    later = [
        messages.send_unit(settings_, t.account_id, req, key),
        messages.send_unit(settings_, t.account_id, other, key),
        messages.send_unit(settings_, t.account_id, other, uuid.uuid4().hex),
    ]
    outcomes, ran = _run(api.app.state.engine, later, together=True)
    assert ran is True
    assert outcomes[0][1].replayed
    assert outcomes[0][1].body == answers[0].body
    assert outcomes[1][0] is False
    assert outcomes[1][1].code == "idempotency_conflict"
    assert outcomes[2][1].status == 201
    assert len([e for e in t.ledger() if str(e["reference"]).startswith("msg_")]) == 2
    # and the stored answer is the one a later replay alone gets
    again = messages.send_sms(api.app.state.engine, settings_, t.account_id, req, key)
    assert again.replayed
    assert again.body == answers[0].body


def test_a_batch_with_an_account_whose_period_ended_runs_one_by_one_and_opens_the_period(
    api: Any,
) -> None:
    t = tenant(api, credit="1.00")
    assert t.number is not None
    engine = api.app.state.engine
    ended = now_micros() - 1_000_000
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE accounts SET period_end = :e WHERE id = :a"),
            {"e": ended, "a": t.account_id},
        )
    settings_ = api.app.state.settings
    units = [
        messages.send_unit(
            settings_, t.account_id, messages.SendSms(t.number, US_TO, "hi", t.user), f"p{i}"
        )
        for i in range(2)
    ]
    outcomes, ran = _run(engine, units, together=True)
    assert ran is False  # the pass refused the batch; its units ran alone
    assert [(ok, value.status) for ok, value in outcomes] == [(True, 201), (True, 201)]
    with engine.connect() as conn:
        period_end = conn.execute(
            sa.text("SELECT period_end FROM accounts WHERE id = :a"), {"a": t.account_id}
        ).scalar_one()
    assert period_end > now_micros()  # the first send opened the period
    assert len([e for e in t.ledger() if str(e["reference"]).startswith("msg_")]) == 2


def test_concurrent_sends_through_the_committer_run_together_and_the_metrics_count_it(
    api: Any,
) -> None:
    apikit.import_tiny_card(api)
    from concurrent.futures import ThreadPoolExecutor

    from talktime.service.groupcommit import stats_for

    t = tenant(api, credit="1.30", rate_card="tiny", plan="trial")
    before = stats_for(api.app.state.engine)
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: t.sms(US_TO).status_code, range(48)))
    after = stats_for(api.app.state.engine)
    assert statuses.count(201) == 30
    assert statuses.count(402) == 18
    assert after.together > before.together  # 16 clients: some batches held several sends
    assert after.fallbacks == before.fallbacks
    assert t.balance()["available"] == "0.0000"
