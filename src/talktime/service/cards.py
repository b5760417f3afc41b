"""Which rate card prices an account: its assigned card, else the configured default; and
which version of a card is in force (pinned by an operator, else chosen by effective dates).

Card files live in the package (shipped cards) and under `rate_cards_dir` (imported versions
and pins); the version in force is chosen by `talktime.rating.load_card`: the pinned version
(`<rate_cards_dir>/<name>/ACTIVE`) if any, else from the effective dates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from talktime.config import Settings
from talktime.rating import (
    RateCard,
    RateCardCurrencyError,
    RateCardNotFoundError,
    activate_card,
    deactivate_card,
    load_card,
    pinned_version,
)
from talktime.service.common import now_micros
from talktime.store.api_tables import account_cards
from talktime.wallet import cycle
from talktime.wallet.accounts import currency_of
from talktime.wallet.book import Book, CatchUp
from talktime.wallet.cycle import PlanCredit
from talktime.wallet.periods import from_micros


def card_name(conn: sa.Connection, account_id: int, settings: Settings) -> str:
    """The name of the card the account is priced with."""
    name = conn.execute(
        sa.select(account_cards.c.card).where(account_cards.c.account_id == account_id)
    ).scalar()
    return str(name) if name else settings.rate_card


def card_for(conn: sa.Connection, account_id: int, settings: Settings) -> RateCard:
    """The card version in force for the account now."""
    return card_named(card_name(conn, account_id, settings), settings)


def pricing_card(conn: sa.Connection, account_id: int, settings: Settings) -> RateCard:
    """`card_for`, refused (422 `rate_card_currency_mismatch`) when that card prices in another
    currency than the account is billed in: an assigned card is checked when assigned, but the
    default card (`rate_card` setting) can be changed to a card in any currency."""
    card = card_for(conn, account_id, settings)
    require_currency(card, currency_of(conn, account_id), account_id, PRICING_ADVICE)
    return card


PRICING_ADVICE = "nothing was charged; an operator must give the account a card in its currency"
"""How a request priced with a card in another currency ends its refusal."""


def card_named(name: str | None, settings: Settings) -> RateCard:
    """The version in force of card ``name``, or of the configured default when None (an
    account with no card of its own)."""
    return load_card(
        settings.rate_card if name is None else name, directory=settings.rate_cards_dir
    )


@dataclass(frozen=True, slots=True)
class InForce:
    """Card ``name``'s version in force now (None while none is: every version takes effect
    later and none is pinned, or the pin names a missing version) and the pinned version."""

    name: str
    card: RateCard | None
    pin: str | None

    @property
    def version(self) -> str | None:
        """The version in force now, None while none is."""
        return None if self.card is None else self.card.version

    @property
    def pinned(self) -> bool:
        """Whether the version in force is there because an operator pinned it."""
        return self.card is not None and self.card.version == self.pin


def in_force(name: str, settings: Settings) -> InForce:
    """Which version of card ``name`` prices now, and whether it is pinned."""
    try:
        card: RateCard | None = load_card(name, directory=settings.rate_cards_dir)
    except RateCardNotFoundError:
        card = None
    return InForce(name, card, pinned_version(name, settings.rate_cards_dir))


def activate(name: str, version: str, settings: Settings) -> InForce:
    """Pin card ``name`` to ``version`` (in force from now on, whatever the effective dates);
    pinning the pinned version again changes nothing. 404 `rate_card_not_found` for an unknown
    card or version."""
    activate_card(name, version, settings.rate_cards_dir)
    return in_force(name, settings)


def deactivate(name: str, settings: Settings) -> InForce:
    """Remove card ``name``'s pin, if any: its effective dates choose the version again. 404
    `rate_card_not_found` for an unknown card."""
    deactivate_card(name, settings.rate_cards_dir)
    return in_force(name, settings)


def assign(conn: sa.Connection, account_id: int, name: str, settings: Settings) -> RateCard:
    """Price the account with card ``name`` from now on (refused if no version is in force,
    or if the card prices in another currency than the account's)."""
    card = load_card(name, directory=settings.rate_cards_dir)
    require_currency(card, currency_of(conn, account_id), account_id)
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


def require_currency(
    card: RateCard, currency: str | None, account_id: int, advice: str | None = None
) -> None:
    """Refuse to price an account billed in ``currency`` with a card in another currency;
    ``advice`` ends the sentence (by default: choose another card)."""
    if currency is not None and card.currency != currency:
        raise RateCardCurrencyError(
            f"rate card {card.name!r} prices in {card.currency} but account {account_id} is "
            f"billed in {currency}; {advice or 'choose a card that prices in ' + currency}",
            card=card.name,
            currency=card.currency,
            account_currency=currency,
        )


def catch_up(settings: Settings) -> CatchUp:
    """A charging `Book`'s ``catch_up``: an account whose period ended before the monthly
    cycle ran gets the new period opened first, with its free credit from its own card.
    Built on every charging request, so it defers the hook's making to the rare moment a
    period has ended."""

    def hook(conn: sa.Connection, account_id: int, now: int) -> None:
        cycle.catch_up_hook(plan_credit(settings))(conn, account_id, now)

    return hook


def charging_book(conn: sa.Connection, settings: Settings) -> Book:
    """The `Book` of a charging request: the time from the clock (read again if the account's
    lock was awaited across a period boundary, so take `book.now` once the account is
    loaded) and the periods an account began opened first (`catch_up`)."""
    return Book(conn, now_micros(), catch_up=catch_up(settings), clock=now_micros)


def plan_credit(settings: Settings) -> PlanCredit:
    """The monthly cycle's source of free credit: the plan's credit on the account's own card,
    in the version in force when the period starts (None, so the plans table's, when that card
    has no such plan or no version in force then, or prices in another currency than the
    account's: the default card can be changed to any card).

    The plans table holds one figure per plan name, copied from whichever card was synced
    last; a plan of the same name on another card must not set this account's credit.
    """

    def credit(conn: sa.Connection, account_id: int, plan: str, period_start: int) -> int | None:
        name = card_name(conn, account_id, settings)
        day = from_micros(period_start).date()
        try:
            card = load_card(name, at=day, directory=settings.rate_cards_dir)
        except RateCardNotFoundError:
            return None
        if card.currency != currency_of(conn, account_id):
            return None
        return card.plans.get(plan)

    return credit
