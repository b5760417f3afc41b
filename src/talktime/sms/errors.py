"""Refusals of the segment calculator: text that cannot be sent, options it does not know."""

from __future__ import annotations

from typing import ClassVar

from talktime.errors import TalktimeError


class InvalidTextError(TalktimeError, ValueError):
    """The text is not valid Unicode (a lone surrogate), so no handset could receive it."""

    code: ClassVar[str] = "invalid_text"
    status: ClassVar[int] = 422
    title: ClassVar[str] = "Invalid message text"


class SegmentOptionError(TalktimeError, ValueError):
    """An unknown split mode or national language."""

    code: ClassVar[str] = "invalid_segment_option"
    status: ClassVar[int] = 422
    title: ClassVar[str] = "Invalid segmentation option"
