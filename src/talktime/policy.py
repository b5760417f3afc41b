"""Policy: who may do what, before anything is priced or charged.

Pure rules over plain data: an active subscription, role permissions and per-user restrictions,
MMS refused, the sending number's ownership and SMS capability, and the SMS country rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from talktime.errors import TalktimeError

Permission = Literal["sms.send", "calls.make", "billing.manage", "admin"]
PERMISSIONS: Final[frozenset[str]] = frozenset(get_args(Permission))

Role = Literal["owner", "admin", "member", "billing", "viewer"]
ROLES: Final[tuple[str, ...]] = get_args(Role)

ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "owner": PERMISSIONS,
    "admin": PERMISSIONS,
    "member": frozenset({"sms.send", "calls.make"}),
    "billing": frozenset({"billing.manage"}),
    "viewer": frozenset(),
}
"""What each role may do. Calling and SMS are open to every member, as in the seeds."""

SMS_COUNTRIES: Final[frozenset[str]] = frozenset({"US", "CA", "GB", "AU"})
"""Countries where numbers can be SMS-enabled (second seed)."""

SMS_ZONES: Final[dict[str, str]] = {"US": "NANP", "CA": "NANP"}
"""Countries that may text each other although they differ (US <-> Canada)."""

ACTIVE_SUBSCRIPTION = "active"


class SubscriptionInactiveError(TalktimeError):
    code = "subscription_inactive"
    status = 403
    title = "Subscription inactive"


class PermissionDeniedError(TalktimeError):
    code = "permission_denied"
    status = 403
    title = "Permission denied"


class UnknownPermissionError(TalktimeError):
    code = "unknown_permission"
    status = 422
    title = "Unknown permission"


class MmsNotSupportedError(TalktimeError):
    code = "mms_not_supported"
    status = 422
    title = "MMS not supported"


class NumberNotSmsEnabledError(TalktimeError):
    code = "number_not_sms_enabled"
    status = 422
    title = "Number not SMS-enabled"


class NumberNotReceivingError(TalktimeError):
    code = "number_not_receiving"
    status = 422
    title = "Not a receiving number of this account"


class SmsCrossCountryError(TalktimeError):
    code = "sms_cross_country"
    status = 422
    title = "SMS between countries"


@dataclass(frozen=True)
class Actor:
    """The user a request is made for: role plus the permissions an admin took away."""

    user_id: str
    role: str
    restrictions: frozenset[str] = field(default_factory=frozenset)

    @property
    def permissions(self) -> frozenset[str]:
        """What this user may do: the role's permissions minus the restrictions."""
        return ROLE_PERMISSIONS.get(self.role, frozenset()) - self.restrictions


@dataclass(frozen=True)
class SendingNumber:
    """A number the account holds, as policy needs to see it."""

    e164: str
    account_id: int
    country: str
    status: str  # active, suspended, released
    sms_enabled: bool


def require_active_subscription(status: str) -> None:
    """Refuse a billable request or a change of the account unless its subscription is
    active."""
    if status != ACTIVE_SUBSCRIPTION:
        raise SubscriptionInactiveError(
            f"The account's subscription is {status}; reactivate it to use the API "
            "(reading, revoking keys, releasing numbers and turning auto-recharge off still "
            "work).",
            subscription_status=status,
        )


def require_permission(actor: Actor, permission: Permission) -> None:
    """Refuse unless the user's role grants ``permission`` and no admin restricted it."""
    if permission in actor.permissions:
        return
    why = (
        "an admin restricted it"
        if permission in actor.restrictions
        else f"role {actor.role!r} does not include it"
    )
    raise PermissionDeniedError(
        f"User {actor.user_id} may not use {permission}: {why}. Ask an account admin.",
        permission=permission,
        user=actor.user_id,
    )


def check_restrictions(restrictions: Iterable[str]) -> frozenset[str]:
    """Validate a set of restrictions (permission names) an admin sets on a user."""
    given = frozenset(restrictions)
    unknown = sorted(given - PERMISSIONS)
    if unknown:
        raise UnknownPermissionError(
            f"Unknown permission(s) {', '.join(unknown)}; use {', '.join(sorted(PERMISSIONS))}."
        )
    return given


def refuse_media(media: Iterable[object] | None, *, inbound: bool = False) -> None:
    """MMS is not supported: a message with any media attached is refused (an inbound one is
    told to be recorded as text, not to be sent)."""
    if media and list(media):
        if inbound:
            raise MmsNotSupportedError(
                "MMS is not supported: record the received message without its media (text only)."
            )
        raise MmsNotSupportedError(
            "MMS is not supported: send the message without media (text only)."
        )


def sms_capable(country: str) -> bool:
    """Whether numbers of ``country`` can be SMS-enabled."""
    return country in SMS_COUNTRIES


SMS_NUMBER_TYPES = frozenset({"local", "mobile"})
"""The number types that can be SMS-enabled (in the `SMS_COUNTRIES`)."""


def require_sms_capable(e164: str, country: str, number_type: str) -> None:
    """Refuse an SMS that no number like ``e164`` could send or receive (a quote has no
    account to hold the number: this is the part of the number's checks it can make)."""
    if sms_capable(country) and number_type in SMS_NUMBER_TYPES:
        return
    raise NumberNotSmsEnabledError(
        f"{e164} cannot be SMS-enabled (SMS is available on local and mobile numbers of the "
        "US, CA, GB and AU), so no SMS is priced for it.",
        number=e164,
    )


def require_sending_number(number: SendingNumber | None, e164: str, account_id: int) -> None:
    """The from-number must be the account's, active and SMS-enabled."""
    _require_sms_number(number, e164, account_id, receiving=False)


def require_receiving_sms_number(number: SendingNumber | None, e164: str, account_id: int) -> None:
    """An inbound SMS must arrive on one of the account's active, SMS-enabled numbers (the same
    code as for sending, with sentences about receiving)."""
    _require_sms_number(number, e164, account_id, receiving=True)


def _require_sms_number(
    number: SendingNumber | None, e164: str, account_id: int, *, receiving: bool
) -> None:
    if number is None or number.account_id != account_id:
        fix = (
            "messages are received only on your own SMS-enabled numbers"
            if receiving
            else "send from one of your SMS-enabled numbers"
        )
        raise NumberNotSmsEnabledError(
            f"{e164} is not a number of this account; {fix}.", number=e164
        )
    if number.status != "active":
        fix = (
            "messages are received only on active numbers"
            if receiving
            else "send from an active number"
        )
        raise NumberNotSmsEnabledError(f"{e164} is {number.status}; {fix}.", number=e164)
    if not number.sms_enabled or not sms_capable(number.country):
        raise NumberNotSmsEnabledError(
            f"{e164} is not SMS-enabled (SMS is available on local and mobile numbers of the "
            "US, CA, GB and AU).",
            number=e164,
        )


def require_receiving_number(number: SendingNumber | None, e164: str, account_id: int) -> None:
    """An inbound call must arrive on one of the account's active numbers."""
    if number is None or number.account_id != account_id:
        raise NumberNotReceivingError(
            f"{e164} is not a number of this account; inbound calls are received on your own "
            "numbers.",
            number=e164,
        )
    if number.status != "active":
        raise NumberNotReceivingError(
            f"{e164} is {number.status}; calls are received only on active numbers.", number=e164
        )


def _a(country: str) -> str:
    """``country`` (a two-letter code, read letter by letter) with its article: "a US", "an AU"."""
    return ("an " if country[:1] in "AEFHILMNORSX" else "a ") + country


def require_sms_route(from_country: str, to_country: str, *, inbound: bool = False) -> None:
    """SMS only between numbers of one country, except between the US and Canada, in both
    directions (``inbound``: a message received from a ``from_country`` number on the account's
    ``to_country`` number)."""
    if from_country == to_country:
        return
    zone_from = SMS_ZONES.get(from_country)
    if zone_from is not None and zone_from == SMS_ZONES.get(to_country):
        return
    if inbound:
        detail = (
            f"An SMS cannot be received from {_a(from_country)} number on {_a(to_country)} "
            "number: SMS only goes between numbers of one country (US and CA may text each "
            "other)."
        )
    else:
        detail = (
            f"SMS cannot be sent from {_a(from_country)} number to {_a(to_country)} number; "
            "send from a number of the recipient's country (US and CA may text each other)."
        )
    raise SmsCrossCountryError(detail, from_country=from_country, to_country=to_country)
