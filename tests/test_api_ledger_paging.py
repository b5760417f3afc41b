"""`GET /v1/ledger` read page by page: following `next_cursor` with a small `limit` returns every
entry once, newest first, exactly as one unpaged listing does, also under a `kind` filter; and a
`since`/`until` split at an entry's own time (since inclusive, until exclusive) puts every entry
on exactly one side. On SQLite and PostgreSQL, with the entries' real timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import apikit
from apikit import Tenant, tenant

Entry = dict[str, Any]


def busy_tenant(api: Any) -> Tenant:
    """An account whose ledger interleaves kinds: its free and purchased grants, the number's
    first month, two messages, a promotional grant, two more messages (8 entries)."""
    t = tenant(api, credit="5.00")
    for text in ("one", "two"):
        assert t.sms("+14155550111", text).status_code == 201
    apikit.grant(api, t.account_id, "1.00", kind="promotional")
    for text in ("three", "four"):
        assert t.sms("+14155550111", text).status_code == 201
    return t


def pages(t: Tenant, limit: int = 2, **params: Any) -> list[list[Entry]]:
    """Every page of `GET /v1/ledger?limit=...` and ``params``, following `next_cursor`."""
    found: list[list[Entry]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit} | ({} if cursor is None else {"cursor": cursor})
        response = t.get("/v1/ledger", **query)
        assert response.status_code == 200, response.text
        body = response.json()
        found.append(body["entries"])
        cursor = body["next_cursor"]
        if cursor is None:
            return found
        assert len(found) < 100, "the cursor never ends"


def assert_paged_like(paged: list[list[Entry]], unpaged: list[Entry], limit: int = 2) -> None:
    """The pages are full but the last, hold no entry twice, run newest first, and together
    are the unpaged listing."""
    assert all(len(page) == limit for page in paged[:-1]), paged
    assert 1 <= len(paged[-1]) <= limit, paged
    joined = [entry for page in paged for entry in page]
    ids = [entry["id"] for entry in joined]
    assert len(set(ids)) == len(ids), ids  # disjoint
    assert ids == sorted(ids, reverse=True), ids  # newest first
    times = [datetime.fromisoformat(entry["created_at"]) for entry in joined]
    assert times == sorted(times, reverse=True), times
    assert joined == unpaged


def next_microsecond(text: str) -> str:
    return (datetime.fromisoformat(text) + timedelta(microseconds=1)).isoformat()


def test_ledger_pages_of_two_follow_the_cursor_to_the_end_and_equal_the_unpaged_listing(
    api: Any,
) -> None:
    t = busy_tenant(api)
    unpaged = t.ledger()
    assert len(unpaged) == 8, [(e["kind"], e["reference"]) for e in unpaged]
    paged = pages(t)
    # a full page that ends on the oldest entry has no cursor: no empty page after it
    assert [len(page) for page in paged] == [2, 2, 2, 2]
    assert_paged_like(paged, unpaged)
    uneven = pages(t, limit=3)
    assert [len(page) for page in uneven] == [3, 3, 2]
    assert_paged_like(uneven, unpaged, limit=3)


def test_ledger_pages_with_a_kind_filter_hold_only_that_kind_and_all_of_it(api: Any) -> None:
    t = busy_tenant(api)
    unpaged = t.ledger()
    for kind, count in (("usage", 5), ("grant", 3)):  # rental + 4 messages; free, paid, promo
        wanted = [entry for entry in unpaged if entry["kind"] == kind]
        assert len(wanted) == count, (kind, [(e["kind"], e["reference"]) for e in unpaged])
        paged = pages(t, kind=kind)
        assert {entry["kind"] for page in paged for entry in page} == {kind}
        assert_paged_like(paged, wanted)
        assert t.ledger(kind=kind) == wanted


def test_a_since_until_split_at_an_entrys_time_puts_every_entry_on_exactly_one_side(
    api: Any,
) -> None:
    t = busy_tenant(api)
    unpaged = t.ledger()
    at = next(e for e in unpaged if e["kind"] == "grant" and e["amount"] == "1.0000")
    moment = datetime.fromisoformat(at["created_at"])
    assert moment.utcoffset() is not None  # an aware time, sent with its offset (`+` as %2B)
    newer = [e for e in unpaged if datetime.fromisoformat(e["created_at"]) >= moment]
    older = [e for e in unpaged if datetime.fromisoformat(e["created_at"]) < moment]
    assert at in newer  # since is inclusive, until exclusive
    assert at not in older
    assert (len(newer), len(older)) == (3, 5)  # a split mid-ledger: promo + 2 messages after

    since = t.ledger(since=at["created_at"])
    until = t.ledger(until=at["created_at"])
    assert since == newer
    assert until == older
    assert since + until == unpaged  # none lost, none doubled, still newest first
    # the same split read in pages of two
    assert_paged_like(pages(t, since=at["created_at"]), newer)
    assert_paged_like(pages(t, until=at["created_at"]), older)
    # both bounds: one microsecond after the entry leaves exactly the entries of that moment
    window = t.ledger(since=at["created_at"], until=next_microsecond(at["created_at"]))
    assert window == [e for e in unpaged if datetime.fromisoformat(e["created_at"]) == moment]
    assert at in window
