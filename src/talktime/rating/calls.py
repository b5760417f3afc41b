"""Call descriptions: what happened on a call (direction, numbers, durations, forwarding,
transfers), as plain frozen data, and its expansion into billable legs.

`Call.from_dict` reads the JSON shape the CLI and API accept; `legs` turns a call into the legs
the seed page charges (forwarded: 2 calls; transferred to a user: +2 per transfer; external: +1).
A refusal names the field of that shape at fault as `field`, a dotted path
(`transfers.0.outbound_duration`), and each leg the fields its numbers came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from talktime.errors import naming
from talktime.numbers import require_e164
from talktime.rating.card import MAX_LEG_SECONDS, Direction
from talktime.rating.errors import InvalidCallError

TransferKind = Literal["user", "external"]
MAX_DURATION_S: Final = MAX_LEG_SECONDS
"""Bound on one leg's duration (a week), so a typo cannot price a century."""
MAX_TRANSFERS: Final = 100


@dataclass(frozen=True, slots=True)
class Forward:
    """The call was forwarded: an outbound leg from the business number to `to`, `duration` s."""

    to: str
    duration: int


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer of the call.

    `kind="user"`: the transferring user places an outbound leg (`outbound_duration` s) to the
    receiving user's number `to`, who answers it as an inbound leg (`inbound_duration` s).
    `kind="external"`: one outbound leg to the external number `to`; `inbound_duration` is 0.
    The outbound leg's caller ID is `caller_id`, by default the business number of the call.
    """

    kind: TransferKind
    to: str
    outbound_duration: int
    inbound_duration: int = 0
    caller_id: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """What happened on one call.

    `direction="outbound"`: `from_` is the caller ID (business number), `to` the called number.
    `direction="inbound"`: `from_` is the caller, `to` the business number that received it.
    `duration` is the original leg in seconds (0: not answered). `forward` (inbound only) and
    `transfers` add legs.
    """

    direction: Direction
    from_: str
    to: str
    duration: int
    forward: Forward | None = None
    transfers: tuple[Transfer, ...] = ()

    @property
    def business_number(self) -> str:
        """The platform's own number on this call: the caller ID out, the receiving number in."""
        return self.from_ if self.direction == "outbound" else self.to

    @property
    def business_field(self) -> str:
        """The field that gives `business_number`: `from` out, `to` in."""
        return "from" if self.direction == "outbound" else "to"

    def __post_init__(self) -> None:
        if self.direction not in ("outbound", "inbound"):
            raise InvalidCallError(
                f"direction must be 'outbound' or 'inbound', not {self.direction!r}",
                field="direction",
            )
        _check_duration("duration", self.duration)
        if self.direction == "inbound":
            # the caller prices nothing, but a call description names real numbers only
            with naming("from"):
                require_e164(self.from_)
        if self.forward is not None:
            if self.direction != "inbound":
                raise InvalidCallError("only an inbound call can be forwarded", field="forward")
            _check_duration("forward.duration", self.forward.duration)
        if len(self.transfers) > MAX_TRANSFERS:
            raise InvalidCallError(f"at most {MAX_TRANSFERS} transfers per call", field="transfers")
        for i, transfer in enumerate(self.transfers):
            if transfer.kind not in ("user", "external"):
                raise InvalidCallError(
                    f"transfers[{i}].kind must be 'user' or 'external', not {transfer.kind!r}",
                    field=f"transfers.{i}.kind",
                )
            _check_duration(f"transfers[{i}].outbound_duration", transfer.outbound_duration)
            _check_duration(f"transfers[{i}].inbound_duration", transfer.inbound_duration)
            if transfer.kind == "external" and transfer.inbound_duration:
                raise InvalidCallError(
                    f"transfers[{i}] is external: it has one outbound leg, no inbound_duration",
                    field=f"transfers.{i}.inbound_duration",
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Call:
        """Read the JSON shape::

        {"direction": "outbound", "from": "+1...", "to": "+61...", "duration": 70,
         "forward": {"to": "+1...", "duration": 60},
         "transfers": [{"kind": "user", "to": "+1...", "outbound_duration": 20,
                        "inbound_duration": 40, "caller_id": "+1..."},
                       {"kind": "external", "to": "+44...", "outbound_duration": 30}]}
        """
        if not isinstance(data, Mapping):
            raise InvalidCallError("a call description is a JSON object")
        _only(data, {"direction", "from", "to", "duration", "forward", "transfers"}, "call")
        forward = data.get("forward")
        transfers = data.get("transfers") or []
        if not isinstance(transfers, list):
            raise InvalidCallError("transfers must be a list", field="transfers")
        return cls(
            direction=_get(data, "direction", str, "call"),
            from_=_get(data, "from", str, "call"),
            to=_get(data, "to", str, "call"),
            duration=_get(data, "duration", int, "call"),
            forward=_forward(forward) if forward is not None else None,
            transfers=tuple(_transfer(t, i) for i, t in enumerate(transfers)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape `from_dict` reads."""
        out: dict[str, Any] = {
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "duration": self.duration,
        }
        if self.forward is not None:
            out["forward"] = {"to": self.forward.to, "duration": self.forward.duration}
        if self.transfers:
            out["transfers"] = [
                {
                    "kind": t.kind,
                    "to": t.to,
                    "outbound_duration": t.outbound_duration,
                    "inbound_duration": t.inbound_duration,
                    **({"caller_id": t.caller_id} if t.caller_id else {}),
                }
                for t in self.transfers
            ]
        return out


@dataclass(frozen=True, slots=True)
class Leg:
    """One billable leg: priced outbound from `origin` (caller ID) to `number`, or inbound on
    `number` (the receiving number); `role` says why it exists. `origin_field` and
    `number_field` are the fields of the call description that gave the two numbers."""

    direction: Direction
    origin: str | None
    number: str
    duration: int
    role: str
    origin_field: str | None = None
    number_field: str = "to"


def legs(call: Call) -> list[Leg]:
    """The billable legs of `call`, in order: original, forwarding, then each transfer's legs."""
    business, business_field = call.business_number, call.business_field
    out: list[Leg] = []
    if call.direction == "outbound":
        out.append(Leg("outbound", call.from_, call.to, call.duration, "original call", "from"))
    else:
        out.append(Leg("inbound", None, call.to, call.duration, "original call"))
    if call.forward is not None:
        out.append(
            Leg(
                "outbound",
                business,
                call.forward.to,
                call.forward.duration,
                "forwarded call",
                business_field,
                "forward.to",
            )
        )
    for i, transfer in enumerate(call.transfers, 1):
        caller = transfer.caller_id or business
        caller_field = f"transfers.{i - 1}.caller_id" if transfer.caller_id else business_field
        to_field = f"transfers.{i - 1}.to"
        if transfer.kind == "user":
            out.append(
                Leg(
                    "outbound",
                    caller,
                    transfer.to,
                    transfer.outbound_duration,
                    f"transfer {i} to a user: outbound leg",
                    caller_field,
                    to_field,
                )
            )
            out.append(
                Leg(
                    "inbound",
                    None,
                    transfer.to,
                    transfer.inbound_duration,
                    f"transfer {i} to a user: answered leg",
                    None,
                    to_field,
                )
            )
        else:
            out.append(
                Leg(
                    "outbound",
                    caller,
                    transfer.to,
                    transfer.outbound_duration,
                    f"transfer {i} to an external number",
                    caller_field,
                    to_field,
                )
            )
    return out


def _field_path(where: str) -> str:
    """A place as the sentences write it (`transfers[0].to`) as a dotted field path
    (`transfers.0.to`); `call`, the description itself, is the empty path."""
    return "" if where == "call" else re.sub(r"\[(\d+)\]", r".\1", where)


def _in(where: str, key: str) -> str:
    """The field path of ``key`` inside the place ``where``."""
    return ".".join(p for p in (_field_path(where), key) if p)


def _check_duration(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_DURATION_S:
        raise InvalidCallError(
            f"{name} must be whole seconds between 0 and {MAX_DURATION_S}, not {value!r}",
            field=_field_path(name),
        )


def _only(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidCallError(
            f"{where}: unknown field {unknown[0]!r}; known: {', '.join(sorted(allowed))}",
            field=_in(where, unknown[0]),
        )


def _get(data: Mapping[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in data:
        if default is not ...:
            return default
        raise InvalidCallError(f"{where}: {key!r} is required", field=_in(where, key))
    value = data[key]
    if type(value) is not kind:
        raise InvalidCallError(
            f"{where}: {key!r} must be a {kind.__name__}, not {value!r}", field=_in(where, key)
        )
    return value


def _forward(data: Any) -> Forward:
    if not isinstance(data, Mapping):
        raise InvalidCallError(
            "forward must be an object with 'to' and 'duration'", field="forward"
        )
    _only(data, {"to", "duration"}, "forward")
    return Forward(_get(data, "to", str, "forward"), _get(data, "duration", int, "forward"))


def _transfer(data: Any, index: int) -> Transfer:
    where = f"transfers[{index}]"
    if not isinstance(data, Mapping):
        raise InvalidCallError(f"{where} must be an object", field=_field_path(where))
    _only(data, {"kind", "to", "outbound_duration", "inbound_duration", "caller_id"}, where)
    caller_id = data.get("caller_id")
    if caller_id is not None and not isinstance(caller_id, str):
        raise InvalidCallError(
            f"{where}: 'caller_id' must be a string", field=_in(where, "caller_id")
        )
    return Transfer(
        kind=_get(data, "kind", str, where),
        to=_get(data, "to", str, where),
        outbound_duration=_get(data, "outbound_duration", int, where),
        inbound_duration=_get(data, "inbound_duration", int, where, 0),
        caller_id=caller_id,
    )
