"""Benchmark: `talktime.sms.segment` against `smsutil.split` on the same mixed corpus, same run.

Prints messages per second for both and the ratio. Run: `.venv/bin/python bench/segments.py`.
The two are timed in alternating rounds of about the same length and each keeps its best round;
time is this process's CPU time, so other load on a shared machine disturbs both alike and little.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import smsutil

from talktime.sms import segment

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation. "
)

CORPUS: tuple[str, ...] = (
    # plain ASCII, the common case
    "Your verification code is 482913",
    "Hi Sam, your appointment is confirmed for Tue 14 May at 10:30. Reply C to cancel.",
    "Reminder: invoice #4471 for $129.00 is due tomorrow. Pay at https://pay.example.com/i/4471",
    "OK",
    "Thanks! See you soon.",
    "Your order has shipped and will arrive Thursday. Track it here: https://t.example.com/9f2",
    LOREM * 2,  # two parts
    LOREM * 5,  # long multi-part
    # GSM-7 beyond ASCII, extension characters
    "Rendez-vous a 10h pres de l'eglise. Prix: 25€ [TVA incl.] {promo}",
    "Größe ändern? Ärger mit Übergrößen: 15€ Rabatt | Code ~WINTER^",
    "Señor Muñoz, su café está listo.",
    "Ciao! Il tuo ordine è in consegna, costo 12€ ~ grazie. " * 6,
    # UCS-2: emoji, CJK, smart quotes
    "Happy birthday! 🎉🎂",
    "Thanks 👍🏽 see you at 5 👩\u200d🦰🧑\u200d🎄",
    "It’s ready — pick it up at the “front desk”…",
    "您的验证码是 482913，请勿泄露。",
    "ご予約ありがとうございます。明日の午前10時にお待ちしております。" * 4,
    "Great news 🎉 your package 📦 is out for delivery 🚚 today! " * 5,
    "Merhaba, şifreniz: 1234. İyi günler!",
)


def one_pass(fn: Callable[[str], object], repeat: int) -> float:
    """CPU seconds for ``repeat`` passes over the corpus."""
    start = time.process_time()
    for _ in range(repeat):
        for text in CORPUS:
            fn(text)
    return time.process_time() - start


def calibrated(fn: Callable[[str], object], seconds: float) -> int:
    """How many corpus passes take about ``seconds``."""
    repeat = 1
    while one_pass(fn, repeat) < seconds / 4:
        repeat *= 2
    return max(1, int(repeat * seconds / max(one_pass(fn, repeat), 1e-9)))


def main(rounds: int = 21, seconds: float = 0.05) -> None:
    for text in CORPUS:  # both agree on the corpus before anything is timed
        assert len(smsutil.split(text).parts) == segment(text).segments, text
    ours_n, theirs_n = calibrated(segment, seconds), calibrated(smsutil.split, seconds)
    ours = theirs = float("inf")
    for _ in range(rounds):
        ours = min(ours, one_pass(segment, ours_n) / ours_n)
        theirs = min(theirs, one_pass(smsutil.split, theirs_n) / theirs_n)
    print(f"corpus: {len(CORPUS)} messages, {sum(map(len, CORPUS))} characters")
    print(f"talktime.sms.segment  {len(CORPUS) / ours:12,.0f} messages/s")
    print(f"smsutil.split         {len(CORPUS) / theirs:12,.0f} messages/s")
    print(f"ratio                 {theirs / ours:12.1f}x")


if __name__ == "__main__":
    main()
