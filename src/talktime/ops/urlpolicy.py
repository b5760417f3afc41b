"""Which webhook URLs the server may call: http(s) only, and by default only public addresses.

The host is resolved and every address checked, so a tenant cannot point a webhook at the
server's own network (loopback, private ranges, link-local cloud metadata). An operator setting
allows loopback and private targets for development and tests; link-local stays refused.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from talktime.errors import TalktimeError


class WebhookUrlNotAllowedError(TalktimeError):
    code = "webhook_url_not_allowed"
    status = 422
    title = "Webhook URL not allowed"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _refusal(addr: Address, allow_private: bool) -> str | None:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return _refusal(addr.ipv4_mapped, allow_private)
    if addr.is_link_local:
        return "link-local"
    if addr.is_loopback:  # before reserved: ::1 lies in the reserved ::/8
        return None if allow_private else "loopback"
    if addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return "reserved"
    if not addr.is_global:
        return None if allow_private else "private"
    return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: no valid IDNA name
        raise WebhookUrlNotAllowedError(f"the webhook host {host!r} does not resolve") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, *, allow_private: bool) -> str:
    """Return `url` if the server may call it, else raise `WebhookUrlNotAllowedError`."""
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
    for addr in resolve(hostname, port):
        reason = _refusal(addr, allow_private)
        if reason:
            raise WebhookUrlNotAllowedError(
                f"the webhook host {hostname} resolves to the {reason} address {addr}; "
                "use a public address"
                + ("" if allow_private else " (operators may set webhooks_allow_private)")
            )
    return url
