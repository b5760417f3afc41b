"""SMS segment calculator: GSM-7 / UCS-2 parts per 3GPP TS 23.038 and 23.040. Pure, no I/O.

`segment(text)` says how a message is sent and how many parts (billing segments) it costs.
"""

from __future__ import annotations

from talktime.sms.errors import InvalidTextError, SegmentOptionError
from talktime.sms.gsm import LANGUAGES, Language
from talktime.sms.segmenter import (
    SPLITS,
    Encoding,
    Segmentation,
    Split,
    require_valid_text,
    segment,
)
from talktime.sms.smart import LOOK_ALIKES

__all__ = [
    "LANGUAGES",
    "LOOK_ALIKES",
    "SPLITS",
    "Encoding",
    "InvalidTextError",
    "Language",
    "SegmentOptionError",
    "Segmentation",
    "Split",
    "require_valid_text",
    "segment",
]
