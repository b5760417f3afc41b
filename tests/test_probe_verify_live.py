"""`verify` on a database in use: charges and calls committing while it reads never show up as
breaches (one snapshot on both backends)."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from talktime.wallet import Wallet


def test_verify_during_live_charges_and_holds_reports_no_false_breach(engine: sa.Engine) -> None:
    wallet = Wallet(engine)  # the real clock, as `talktime verify` runs
    wallet.upsert_plan("none", 0)
    accounts = [wallet.create_account(f"A{i}", "none", f"create-{i}").account.id for i in range(3)]
    for account in accounts:
        wallet.grant(account, "purchased", 10**12, f"buy-{account}")
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic(account: int) -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                wallet.charge(account, 1_000, f"c-{account}-{n}")
                hold = wallet.authorize(account, 5_000, f"h-{account}-{n}", timedelta(minutes=5))
                wallet.settle(hold.hold.id, 3_000, f"s-{account}-{n}")
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=traffic, args=(a,)) for a in accounts]
    for thread in threads:
        thread.start()
    try:
        seen = [str(b) for _ in range(15) for b in wallet.verify()]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert seen == []
    assert wallet.verify() == []
    wallet.close()
