"""Wallet refusals: each a `TalktimeError` with a stable code, an HTTP status and a sentence.

A refused operation changes nothing and is not stored under its idempotency key.
"""

from __future__ import annotations

from typing import ClassVar

from talktime.errors import TalktimeError
from talktime.store.migrate import (  # re-exported: a database never migrated
    DatabaseNotMigratedError as DatabaseNotMigratedError,
)


class WalletError(TalktimeError):
    """Base of every wallet refusal."""


class InvalidAmountError(WalletError):
    """An amount that is not a positive (or, where allowed, zero) int of micro-units."""

    code: ClassVar[str] = "invalid_amount"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Invalid amount"


class InvalidRequestError(WalletError):
    """A request the wallet cannot act on as written (unknown kind, status, bad key...)."""

    code: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Invalid request"


class InsufficientCreditError(WalletError):
    """The available credit does not cover the whole amount; nothing was debited."""

    code: ClassVar[str] = "insufficient_credit"
    status: ClassVar[int] = 402
    title: ClassVar[str] = "Insufficient credit"


class MonthlyLimitReachedError(WalletError):
    """The charge would take this period's paid-credit usage over the monthly limit."""

    code: ClassVar[str] = "monthly_limit_reached"
    status: ClassVar[int] = 402
    title: ClassVar[str] = "Monthly limit reached"


class IdempotencyConflictError(WalletError):
    """The idempotency key was already used for a different request."""

    code: ClassVar[str] = "idempotency_conflict"
    status: ClassVar[int] = 409
    title: ClassVar[str] = "Idempotency key reused"


class AccountNotFoundError(WalletError):
    """No account with that id."""

    code: ClassVar[str] = "account_not_found"
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Account not found"


class PlanNotFoundError(WalletError):
    """No plan with that name in the plans table."""

    code: ClassVar[str] = "plan_not_found"
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Plan not found"


class GrantNotFoundError(WalletError):
    """No grant with that id on that account."""

    code: ClassVar[str] = "grant_not_found"
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Grant not found"


class HoldNotFoundError(WalletError):
    """No hold with that id."""

    code: ClassVar[str] = "hold_not_found"
    status: ClassVar[int] = 404
    title: ClassVar[str] = "Hold not found"


class HoldNotPendingError(WalletError):
    """The hold was already settled, voided or expired, so it cannot change."""

    code: ClassVar[str] = "hold_not_pending"
    status: ClassVar[int] = 409
    title: ClassVar[str] = "Hold is closed"


class RefundNotAllowedError(WalletError):
    """Only unspent, unexpired purchased credit can be refunded."""

    code: ClassVar[str] = "refund_not_allowed"
    status: ClassVar[int] = 409
    title: ClassVar[str] = "Refund not allowed"
