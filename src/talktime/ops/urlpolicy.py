"""Which webhook URLs the server may call: http(s) only, and by default only public addresses.

The host is resolved and every address checked, so a tenant cannot point a webhook at the
server's own network (loopback, private ranges, link-local cloud metadata). An operator setting
allows loopback and private targets for development and tests; link-local stays refused. The
sender connects to the address this check resolved (`pinned_address`), so a DNS answer that
changes after the check (rebinding) cannot steer a delivery elsewhere. A refused host name is
told apart from a name that does not resolve only in the server's log: the tenant's sentence is
the same, so the API cannot be used to map the server's internal names.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import httpx

from talktime.errors import TalktimeError


class WebhookUrlNotAllowedError(TalktimeError):
    code = "webhook_url_not_allowed"
    status = 422
    title = "Webhook URL not allowed"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

log = logging.getLogger(__name__)

_NOT_GLOBAL = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments (Python 3.11.7: global)
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local (Python 3.11.7: global)
)


def _refusal(addr: Address, allow_private: bool) -> str | None:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return _refusal(addr.ipv4_mapped, allow_private)
        if addr.sixtofour is not None:  # 2002::/16 carries an IPv4 address a relay reaches
            return _refusal(addr.sixtofour, allow_private)
        if addr.teredo is not None:
            return _refusal(addr.teredo[1], allow_private) or _refusal(
                addr.teredo[0], allow_private
            )
    if addr.is_link_local:
        return "link-local"
    if addr.is_loopback:  # before reserved: ::1 lies in the reserved ::/8
        return None if allow_private else "loopback"
    if addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return "reserved"
    if not addr.is_global or any(addr in net for net in _NOT_GLOBAL):
        return None if allow_private else "private"
    return None


def _not_public(host: str, allow_private: bool) -> WebhookUrlNotAllowedError:
    """The one refusal of a host name that does not resolve or resolves to a refused address."""
    return WebhookUrlNotAllowedError(
        f"the webhook host {host!r} does not resolve to a public address; use a host that does"
        + ("" if allow_private else " (operators may set webhooks_allow_private)")
    )


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int, allow_private: bool = False) -> list[Address]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: no valid IDNA name
        log.info("webhook host %r does not resolve: %s", host, exc)
        raise _not_public(host, allow_private) from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, *, allow_private: bool) -> str:
    """Return `url` if the server may call it, else raise `WebhookUrlNotAllowedError`."""
    _checked(url, allow_private)
    return url


def pinned_address(url: str, *, allow_private: bool) -> Address:
    """`check_url`, returning the address to connect to: the first one the check resolved
    (each of them was checked), so the connection cannot go where the check did not look."""
    return _checked(url, allow_private)[0]


def _checked(url: str, allow_private: bool) -> list[Address]:
    """The addresses of `url`'s host, each one allowed, else `WebhookUrlNotAllowedError`."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        httpx.URL(url)  # what the sender parses: urlsplit drops a tab or newline, httpx refuses
    except (ValueError, httpx.InvalidURL) as exc:  # e.g. a bracketed host that is no IPv6 address
        raise WebhookUrlNotAllowedError(f"the webhook URL is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise WebhookUrlNotAllowedError("a webhook URL must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise WebhookUrlNotAllowedError("a webhook URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookUrlNotAllowedError("the webhook URL has an invalid port") from exc
    addresses = resolve(hostname, port, allow_private)
    for addr in addresses:
        reason = _refusal(addr, allow_private)
        if reason is None:
            continue
        if _literal(hostname) is None:  # a name: its addresses go to the log only
            log.info("webhook host %r resolves to the %s address %s", hostname, reason, addr)
            raise _not_public(hostname, allow_private)
        raise WebhookUrlNotAllowedError(
            f"the webhook address {addr} is a {reason} address; use a public address"
            + ("" if allow_private else " (operators may set webhooks_allow_private)")
        )
    return addresses
