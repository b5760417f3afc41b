"""The webhook URL policy after a security review: a delivery connects to the address its check
resolved (a DNS answer that changes afterwards, rebinding, cannot steer it), 6to4, Teredo,
site-local and 192.0.0.0/24 targets are refused, and a refused host name is not told apart
from one that does not resolve (the API must not map the server's internal names)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from talktime.config import Settings
from talktime.ops import webhooks
from talktime.ops.urlpolicy import WebhookUrlNotAllowedError, check_url

from receiver import receiver

REAL_GETADDRINFO = socket.getaddrinfo


def _settings(allow_private: bool) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url="sqlite://", webhooks_allow_private=allow_private, webhooks_timeout_seconds=2
    )


def test_a_delivery_connects_to_the_address_its_check_resolved_not_a_second_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name answers loopback (where the receiver is) to the check, then an address nothing
    listens on: a sender that resolves again misses the receiver; the pinned one reaches it,
    with the name as given in Host."""
    answers = iter(["127.0.0.1"] + ["10.255.255.1"] * 10)
    looked_up: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.rebind.test":
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        looked_up.append(host)
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        url = f"http://hooks.rebind.test:{port}/hooks"
        result = webhooks._post(url, b"{}", {"webhook-id": "evt_1"}, _settings(True))
        assert result.outcome == "ok", result
        assert hook.ids() == ["evt_1"]
        assert hook.requests[0].headers["host"] == f"hooks.rebind.test:{port}"
    assert looked_up == ["hooks.rebind.test"]  # resolved once, by the check


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::]/latest/meta-data/",  # 6to4 of 169.254.169.254
        "http://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
        "http://[fec0::1]/hook",  # site-local
        "http://192.0.0.8/hook",  # IETF protocol assignments
    ],
)
def test_addresses_that_embed_or_are_private_ones_are_refused(url: str) -> None:
    with pytest.raises(WebhookUrlNotAllowedError):
        check_url(url, allow_private=False)


def test_a_6to4_address_of_a_public_one_is_allowed() -> None:
    assert check_url("http://[2002:808:808::]/hook", allow_private=False)  # 8.8.8.8


def test_a_refused_name_and_a_name_that_does_not_resolve_get_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "db.internal.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    sentences = []
    for host in ("db.internal.test", "nothing.internal.test"):
        with pytest.raises(WebhookUrlNotAllowedError) as refused:
            check_url(f"http://{host}/hook", allow_private=False)
        sentences.append(refused.value.detail.replace(host, "HOST"))
        assert "10.1.2.3" not in refused.value.detail
    assert sentences[0] == sentences[1]
    assert "does not resolve to a public address" in sentences[0]


def test_an_address_given_as_such_is_still_named_with_its_kind() -> None:
    with pytest.raises(WebhookUrlNotAllowedError, match=r"127\.0\.0\.1 is a loopback address"):
        check_url("http://127.0.0.1/hook", allow_private=False)
