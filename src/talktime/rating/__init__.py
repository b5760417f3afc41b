"""Rating: rate cards loaded from versioned data files, and pure pricing of SMS, call legs and
number rentals into quotes whose every line names the rate (card version + row) behind it.

Public interface (stable; other packages build on it)::

    from talktime.rating import load_card, price_sms, price_call, price_number_rental
    card = load_card("default")            # RateCard: .name .version .currency .plans
    card.voice_rate("outbound", "US", "+61412345678")  # VoiceRate, for holds and max durations
    price_call(card, Call("outbound", "+14155550123", "+61412345678", 70))  # Quote
"""

from __future__ import annotations

from talktime.rating.calls import Call, Forward, Leg, Transfer, legs
from talktime.rating.card import (
    Direction,
    NumberRate,
    RateCard,
    RateRef,
    Rounding,
    SmsRate,
    VoiceRate,
    apply_rounding,
)
from talktime.rating.errors import (
    DestinationNotPricedError,
    InvalidCallError,
    InvalidRateCardError,
    InvalidUsageError,
    RateCardCurrencyError,
    RateCardNotFoundError,
    RateCardVersionExistsError,
)
from talktime.rating.loader import (
    CardProblem,
    activate_card,
    deactivate_card,
    import_card,
    is_shipped,
    list_cards,
    load_card,
    pinned_version,
    read_card,
    shipped_card_dir,
    shipped_cards_dir,
)
from talktime.rating.messages import price_sms
from talktime.rating.pricing import price_call, price_number_rental
from talktime.rating.quote import LineKind, Quote, QuoteLine, Unit

__all__ = [
    "Call",
    "CardProblem",
    "DestinationNotPricedError",
    "Direction",
    "Forward",
    "InvalidCallError",
    "InvalidRateCardError",
    "InvalidUsageError",
    "Leg",
    "LineKind",
    "NumberRate",
    "Quote",
    "QuoteLine",
    "RateCard",
    "RateCardCurrencyError",
    "RateCardNotFoundError",
    "RateCardVersionExistsError",
    "RateRef",
    "Rounding",
    "SmsRate",
    "Transfer",
    "Unit",
    "VoiceRate",
    "activate_card",
    "apply_rounding",
    "deactivate_card",
    "import_card",
    "is_shipped",
    "legs",
    "list_cards",
    "load_card",
    "pinned_version",
    "price_call",
    "price_number_rental",
    "price_sms",
    "read_card",
    "shipped_card_dir",
    "shipped_cards_dir",
]
