"""Pages of a list: read one row more than asked, and the last row of a full page is the
cursor of the next (None on the last page)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from talktime.errors import TalktimeError

T = TypeVar("T")


def split_page(
    found: Sequence[T], limit: int, cursor_of: Callable[[T], object]
) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``found`` (read with a limit of ``limit + 1``) and the
    `next_cursor`: ``cursor_of`` the last of them when more followed, else None."""
    page = list(found[:limit])
    return page, str(cursor_of(page[-1])) if len(found) > limit else None


class UnknownCursorError(TalktimeError):
    """A list's cursor that names no row of that list."""

    code = "invalid_request"
    status = 422
    title = "Invalid request"


def unknown_cursor(cursor: str, what: str) -> UnknownCursorError:
    """The refusal of ``cursor``, which is not ``what`` (e.g. "a key of this list")."""
    return UnknownCursorError(
        f"the cursor {cursor!r} is not {what}; pass the `next_cursor` of the previous page, "
        "or no cursor for the first page",
        field="cursor",
    )
