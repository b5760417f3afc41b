"""Rating speed: SMS and call quotes per second against bare `phonenumbers.parse` in the same run.

Target: a warm SMS quote (both numbers cached, segmenting included) costs less than a third of
one bare `phonenumbers.parse` of one number. Run: `.venv/bin/python bench/rating.py`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import phonenumbers

from talktime import numbers
from talktime.rating import Call, Forward, Transfer, load_card, price_call, price_sms

N = 10_000
REPEAT = 5
BUSINESS = "+14155550123"
TEXT = "Hi Sam, your appointment is confirmed for 10:30 tomorrow. Reply C to cancel."


def distinct_numbers(count: int) -> list[str]:
    """`count` distinct valid numbers in the US, CA, GB and AU (priced by the default card)."""
    rng = random.Random(42)
    templates = [
        ("+1201", 7),  # US New Jersey
        ("+1415", 7),  # US San Francisco
        ("+1613", 7),  # CA Ottawa
        ("+447400", 6),  # GB mobile
        ("+61412", 6),  # AU mobile
    ]
    found: set[str] = set()
    while len(found) < count:
        prefix, digits = rng.choice(templates)
        number = prefix + "".join(rng.choice("0123456789") for _ in range(digits))
        if number not in found and phonenumbers.is_valid_number(phonenumbers.parse(number)):
            found.add(number)
    return sorted(found)


def per_item(
    run: Callable[[], None], count: int, *, before: Callable[[], None] | None = None
) -> float:
    """Best-of-REPEAT seconds per item of `run` (which handles `count` items)."""
    best = float("inf")
    for _ in range(REPEAT):
        if before is not None:
            before()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / count


def main() -> None:
    card = load_card("default")
    targets = distinct_numbers(N)

    def bare_parse() -> None:
        parse = phonenumbers.parse
        for number in targets:
            parse(number, None)

    def sms_quotes() -> None:
        for number in targets:
            price_sms(card, BUSINESS, number, TEXT)

    def call_quotes() -> None:
        for number in targets:
            price_call(card, Call("outbound", BUSINESS, number, 70))

    complex_call = [
        Call(
            "inbound",
            number,
            BUSINESS,
            95,
            forward=Forward("+12015550123", 80),
            transfers=(Transfer("user", "+16505550199", 12, 40), Transfer("external", number, 30)),
        )
        for number in targets
    ]

    def complex_quotes() -> None:
        for call in complex_call:
            price_call(card, call)

    def warm_up() -> None:
        numbers.cache_clear()
        sms_quotes()

    parse_s = per_item(bare_parse, N)
    cold_s = per_item(sms_quotes, N, before=numbers.cache_clear)
    warm_s = per_item(sms_quotes, N, before=warm_up)
    call_s = per_item(call_quotes, N, before=warm_up)
    complex_s = per_item(complex_quotes, N, before=warm_up)

    print(f"{N} distinct numbers (US, CA, GB mobile, AU mobile), best of {REPEAT} runs")
    rows = [
        ("bare phonenumbers.parse (baseline)", parse_s),
        ("SMS quote, cold cache", cold_s),
        ("SMS quote, warm cache", warm_s),
        ("call quote, 1 leg, warm", call_s),
        ("call quote, 5 legs, warm", complex_s),
    ]
    for label, seconds in rows:
        print(
            f"  {label:<36} {seconds * 1e6:8.2f} us  {1 / seconds:>10,.0f}/s  "
            f"{seconds / parse_s:6.2f} x parse"
        )
    ratio = warm_s / parse_s
    verdict = "MET" if ratio < 1 / 3 else "MISSED"
    print(f"target: warm SMS quote < 1/3 of one bare parse: {ratio:.3f} -> {verdict}")


if __name__ == "__main__":
    main()
