"""Idempotency keys for the wallet's model-based tests."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st


def fresh_or_refused(data: st.DataObject, refused: list[str], fresh: Callable[[], str]) -> str:
    """A fresh key, or one a refused request used (it was not stored, so it is free again);
    a reused key leaves ``refused``."""
    if refused and data.draw(st.booleans(), label="reuse a refused key"):
        key = data.draw(st.sampled_from(refused), label="refused key")
        refused.remove(key)
        return key
    return fresh()
