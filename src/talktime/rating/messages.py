"""Pricing of one SMS against a rate card version: segments from `talktime.sms`, the rate of
the other party's country, the card's per-message rounding. Pure; the output is a `Quote`.
"""

from __future__ import annotations

from decimal import Decimal

from talktime import sms
from talktime.rating.card import Direction, RateCard, apply_rounding
from talktime.rating.errors import InvalidUsageError
from talktime.rating.quote import Quote, QuoteLine


def price_sms(
    card: RateCard,
    from_: str,
    to: str,
    text: str,
    direction: Direction = "outbound",
    smart_encoding: bool = False,
    *,
    segmentation: sms.Segmentation | None = None,
) -> Quote:
    """Price one SMS: segments (`talktime.sms.segment`) x (base fee + the other party's country
    rate), the message's cost rounded per the card. The other party is `to` for an outbound
    message and `from_` for an inbound one; both numbers must be valid E.164. An inbound message
    on a card without inbound SMS rows is free: a quote of total 0 and no lines. Smart encoding
    rewrites an outgoing text, so it is refused (InvalidUsageError) for an inbound one.

    A caller that already segmented ``text`` (with the same ``smart_encoding``) passes that
    ``segmentation`` so the text is not walked twice."""
    if direction == "outbound":
        card.classify(from_)
        party = card.classify(to)
    elif direction == "inbound":
        if smart_encoding:
            raise InvalidUsageError(
                "smart_encoding applies to outgoing messages only: an incoming message is "
                "billed as it arrived; leave it out for an inbound quote.",
                field="smart_encoding",
            )
        party = card.classify(from_)
        card.classify(to)
    else:
        raise InvalidUsageError(
            f"direction must be 'outbound' or 'inbound', not {direction!r}", field="direction"
        )
    if segmentation is None:
        segmentation = sms.segment(text, smart_encoding=smart_encoding)
    if direction == "inbound" and not card.prices_sms("inbound"):
        return Quote(card.name, card.version, card.currency, (), 0)  # not priced: free
    rate = card.sms_rate(direction, party.country)
    count = segmentation.segments
    unrounded = count * rate.per_segment
    amount = apply_rounding(unrounded, card.sms_rounding)
    line = QuoteLine(
        "sms",
        f"{direction} SMS {'to' if direction == 'outbound' else 'from'} {party.e164} "
        f"({party.country})",
        Decimal(count),
        "segments",
        rate.per_segment,
        unrounded,
        amount,
        card.sms_rounding,
        rate.ref,
    )
    return Quote(card.name, card.version, card.currency, (line,), amount)
