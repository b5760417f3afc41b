"""Checks of the embedded API's arguments, made before any query.

A value of the wrong type or out of range would otherwise meet each backend differently: SQLite
stores or compares it as given, PostgreSQL casts it (a grant id of 29.5 became grant 30) or
raises a raw driver error. Each check raises `InvalidRequestError` with the argument named.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from talktime.ids import MAX_ID
from talktime.wallet.errors import InvalidRequestError

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Times are accepted in [EARLIEST, LATEST): far enough from year 9999 that every period end,
deadline and expiry computed from them stays a valid datetime."""
MAX_TTL = timedelta(days=3650)
MAX_PRIORITY = 2**31 - 1


def check_id(value: object, what: str) -> None:
    """An id is an int (not a bool, float or string) of at most `MAX_ID` in magnitude; ids
    that fit but do not exist are the caller's not-found error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"the {what} must be an int, not {type(value).__name__}")
    if not -MAX_ID <= value <= MAX_ID:
        raise InvalidRequestError(f"the {what} {value} is out of range (at most {MAX_ID})")


def check_moment(value: object, what: str) -> None:
    """A time is a timezone-aware `datetime` in [EARLIEST, LATEST); None passes."""
    if value is None:
        return
    if not isinstance(value, datetime):
        raise InvalidRequestError(
            f"{what} must be a timezone-aware datetime, not {type(value).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(f"{what} must be timezone-aware (UTC), not a naive datetime")
    if not EARLIEST <= value < LATEST:
        raise InvalidRequestError(
            f"{what} {value.isoformat()} is out of range: times from 1970 to 8999 are accepted"
        )


def check_ttl(value: object, what: str = "a hold's ttl") -> None:
    """A ttl is a positive `timedelta` of at most `MAX_TTL`."""
    if not isinstance(value, timedelta):
        raise InvalidRequestError(f"{what} is a datetime.timedelta, not {type(value).__name__}")
    if value <= timedelta(0):
        raise InvalidRequestError(f"{what} must be positive, not {value}")
    if value > MAX_TTL:
        raise InvalidRequestError(f"{what} is at most {MAX_TTL.days} days")


def check_string(value: object, what: str, *, limit: int, optional: bool = False) -> None:
    """A non-empty string of at most ``limit`` characters that both backends store alike: no
    NUL character and no lone surrogate (which cannot be encoded as UTF-8)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidRequestError(f"the {what} must be a string, not {type(value).__name__}")
    if not value or len(value) > limit:
        raise InvalidRequestError(f"the {what} is a non-empty string of at most {limit} characters")
    check_storable(value, what)


def check_storable(value: str, what: str) -> None:
    """Refuse a NUL character (PostgreSQL text cannot hold one) or a lone surrogate."""
    if "\x00" in value:
        raise InvalidRequestError(f"the {what} must not contain NUL characters")
    if not encodes_as_utf8(value):
        raise InvalidRequestError(f"the {what} holds a lone surrogate, which is not valid text")


def encodes_as_utf8(text: str) -> bool:
    """False for text holding a lone surrogate (which no database column can store)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_priority(value: object) -> None:
    """A grant priority is an int from 0 to 2^31 - 1 (None: the kind's default)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"the priority must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_PRIORITY:
        raise InvalidRequestError(f"the priority is from 0 to {MAX_PRIORITY}, not {value}")


def names_its_rate(line: object) -> bool:
    """True for a priced line that names the rate-card version and rate that produced it: an
    object whose `rate` is non-empty text (rating writes `card@version:file:line`)."""
    if not isinstance(line, dict):
        return False
    rate = line.get("rate")
    return isinstance(rate, str) and rate != ""


def lines_name_their_rates(lines: object) -> bool:
    """True for priced lines as the ledger keeps them: a list of lines, each naming its rate."""
    return isinstance(lines, list | tuple) and all(names_its_rate(line) for line in lines)


def encode_lines(lines: Any) -> str | None:
    """Priced lines as the JSON text a ledger entry stores (None stays None), refused unless
    they are a list of objects each naming its rate (`names_its_rate`), as JSON without NaN or
    infinities (PostgreSQL's json type refuses those; SQLite would store invalid JSON).
    Encoded once per operation, whatever the entries it writes."""
    if lines is None:
        return None
    if not lines_name_their_rates(lines):
        raise InvalidRequestError(
            "the priced lines are a list of objects, each naming the rate-card version and "
            'rate that produced it in "rate" (as rating writes them, e.g. '
            '"default@2026.11.1:sms.csv:12")'
        )
    try:
        return json.dumps(lines, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the priced lines are not valid JSON: {exc}") from None
