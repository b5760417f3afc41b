"""Refusals: every error a user can act on has a stable code, an HTTP status and a sentence.

Packages define their own subclasses next to the rule they guard (`sms.InvalidTextError`,
`wallet.InsufficientCreditError`, ...); the API turns any `TalktimeError` into an RFC 9457
problem, and the CLI prints `error[code]: sentence`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar


class TalktimeError(Exception):
    """A refusal. Subclasses set `code`, `status` and `title`; each instance carries a sentence.

    `extra` holds machine-readable facts a client may act on (e.g. `needed` and `available` for
    insufficient credit); they appear as extension members of the problem document. A refusal
    of one input names it as `field`, a dotted path (`from`, `transfers.0.to`): see `naming`.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """Plain data: code, title, status, detail and the extra members."""
        return {
            "code": self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


@contextmanager
def naming(field: str) -> Iterator[None]:
    """Name ``field`` as the input at fault in a refusal raised inside the block, unless the
    refusal names one already (an inner, more precise path wins).

    The caller that knows which input it handed down says so (`with naming("to"):
    card.classify(req.to)`), so rules that see only a value stay free of the request's shape.
    """
    try:
        yield
    except TalktimeError as refusal:
        refusal.extra.setdefault("field", field)
        raise
