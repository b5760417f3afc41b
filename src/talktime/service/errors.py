"""Refusals of the application service that belong to no lower package."""

from __future__ import annotations

from talktime.errors import TalktimeError


class NotFoundError(TalktimeError):
    """The resource does not exist for this account (another account's ids answer the same)."""

    code = "not_found"
    status = 404
    title = "Not found"


class UnknownUserError(TalktimeError):
    """The request names a user the account does not have."""

    code = "unknown_user"
    status = 422
    title = "Unknown user"


class InvalidRequestError(TalktimeError):
    """The request is well-formed but cannot be acted on as written."""

    code = "invalid_request"
    status = 422
    title = "Invalid request"


class RequestConflictError(TalktimeError):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_conflict"
    status = 409
    title = "Idempotency key reused"


class CallStateError(TalktimeError):
    """The call is not in a state that allows this step (e.g. extending a completed call)."""

    code = "call_not_active"
    status = 409
    title = "Call not active"
