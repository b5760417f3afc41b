"""Which rate card prices an account: its assigned card, else the configured default.

Card files live in the package (shipped cards) and under `rate_cards_dir` (imported versions);
the version in force is chosen by `talktime.rating.load_card` from the effective dates.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from talktime.config import Settings
from talktime.rating import RateCard, load_card
from talktime.store.api_tables import account_cards


def card_name(conn: sa.Connection, account_id: int, settings: Settings) -> str:
    """The name of the card the account is priced with."""
    name = conn.execute(
        sa.select(account_cards.c.card).where(account_cards.c.account_id == account_id)
    ).scalar()
    return str(name) if name else settings.rate_card


def card_for(conn: sa.Connection, account_id: int, settings: Settings) -> RateCard:
    """The card version in force for the account now."""
    return card_named(card_name(conn, account_id, settings), settings)


def card_named(name: str | None, settings: Settings) -> RateCard:
    """The version in force of card ``name``, or of the configured default when None (an
    account with no card of its own)."""
    return load_card(name or settings.rate_card, directory=settings.rate_cards_dir)


def assign(conn: sa.Connection, account_id: int, name: str, settings: Settings) -> RateCard:
    """Price the account with card ``name`` from now on (refused if no version is in force)."""
    card = load_card(name, directory=settings.rate_cards_dir)
    now = time.time_ns() // 1000
    updated = conn.execute(
        account_cards.update()
        .where(account_cards.c.account_id == account_id)
        .values(card=name, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(
            account_cards.insert().values(account_id=account_id, card=name, updated_at=now)
        )
    return card
