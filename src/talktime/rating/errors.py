"""Refusals of the rating engine: unpriced destinations, invalid rate cards and call descriptions.

Each one is a `TalktimeError` with a stable code, so the API and CLI report them alike.
"""

from __future__ import annotations

from talktime.errors import TalktimeError


class DestinationNotPricedError(TalktimeError):
    """The rate card has no rate for this destination; rating refuses rather than guess."""

    code = "destination_not_priced"
    status = 422
    title = "Destination not priced"


class InvalidRateCardError(TalktimeError):
    """A rate card failed validation; `errors` lists each problem with file, line, column."""

    code = "invalid_rate_card"
    status = 422
    title = "Invalid rate card"


class RateCardNotFoundError(TalktimeError):
    """No rate card (or no version of it in force) by that name."""

    code = "rate_card_not_found"
    status = 404
    title = "Rate card not found"


class RateCardVersionExistsError(TalktimeError):
    """A card version that already exists with other content (versions are immutable)."""

    code = "rate_card_version_exists"
    status = 409
    title = "Rate card version exists"


class RateCardCurrencyError(TalktimeError):
    """A card in another currency than the one it would price: an account billed in USD
    priced with a EUR card, or a new version of a card that changes its currency."""

    code = "rate_card_currency_mismatch"
    status = 422
    title = "Rate card in another currency"


class InvalidCallError(TalktimeError):
    """A call description that cannot be rated (negative duration, forwarded outbound...)."""

    code = "invalid_call"
    status = 422
    title = "Invalid call description"


class InvalidUsageError(TalktimeError):
    """A usage to price that makes no sense (unknown SMS direction, months out of range...)."""

    code = "invalid_usage"
    status = 422
    title = "Invalid usage description"
