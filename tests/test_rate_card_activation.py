"""Activating a rate card version pins it in force whatever the effective dates (put a new version
live now, roll back a bad import) until another is activated or the pin is removed: through the
admin API, `talktime rates activate|deactivate`, and across processes sharing `rate_cards_dir`."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli import app
from talktime.config import get_settings
from talktime.rating import (
    RateCardNotFoundError,
    import_card,
    list_cards,
    load_card,
    shipped_card_dir,
    shipped_cards_dir,
)
from talktime.rating.loader import FILES, PIN

from apikit import ADMIN, tenant
from ratecards import FIRST_SHIPPED, SHIPPED, copy_card, shipped_on

LATER = "2099.1.1"
"""A version of `default` effective 2099-01-01 that prices an SMS to the US at $0.03."""
SAME_DAY = "2026.12.2"
"""A version of `default` effective the shipped version's day, so in force by its dates."""
US_SMS = {"from": "+14155550100", "to": "+14155550111", "text": "hi"}


def _upload(version: str, effective: str, us_rate: str) -> dict[str, str]:
    """The shipped default card as `version`, effective `effective`, outbound US at `us_rate`
    (plus the $0.01 base fee)."""
    source = shipped_card_dir("default")
    files = {name: (source / name).read_text() for name in FILES}
    header = files["card.toml"].replace(f'version = "{SHIPPED}"', f'version = "{version}"')
    files["card.toml"] = header.replace(
        "effective_from = 2026-12-01", f"effective_from = {effective}"
    )
    files["sms.csv"] = files["sms.csv"].replace("outbound,US,0,", f"outbound,US,{us_rate},")
    return files


def _import(api: Any, version: str, effective: str, us_rate: str) -> None:
    response = api.post(
        "/v1/admin/rate-cards", json=_upload(version, effective, us_rate), headers=ADMIN
    )
    assert response.status_code == 201, response.text


def _quote(api: Any) -> tuple[str, str]:
    """The version and total of a quote for a US SMS on the default card."""
    response = api.post("/v1/quotes/sms", json=US_SMS)
    assert response.status_code == 200, response.text
    return response.json()["version"], response.json()["total"]


def _activate(api: Any, version: str, name: str = "default", **headers: str) -> Any:
    return api.post(
        f"/v1/admin/rate-cards/{name}/versions/{version}/activate", headers=headers or ADMIN
    )


def _deactivate(api: Any, name: str = "default", **headers: str) -> Any:
    return api.delete(f"/v1/admin/rate-cards/{name}/activation", headers=headers or ADMIN)


def _listed(api: Any, name: str = "default") -> dict[str, tuple[bool, bool]]:
    """Each version of card `name` listed by the admin API: (in force, pinned)."""
    response = api.get("/v1/admin/rate-cards", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {
        c["version"]: (c["in_force"], c["pinned"])
        for c in response.json()["cards"]
        if c["name"] == name
    }


def _sent_rate(t: Any) -> tuple[str, str]:
    """The amount of a US SMS sent by `t` and the `rate` of its line."""
    response = t.sms("+14155550111")
    assert response.status_code == 201, response.text
    [line] = response.json()["lines"]
    return response.json()["amount"], line["rate"]


def test_a_version_effective_later_is_not_in_force_until_activated(api: Any) -> None:
    _import(api, LATER, "2099-01-01", "0.02")
    assert _quote(api) == (SHIPPED, "0.0100")
    assert _listed(api) == {
        FIRST_SHIPPED: (False, False),
        SHIPPED: (True, False),
        LATER: (False, False),
    }


def test_activating_a_later_version_puts_it_in_force_now_for_quotes_and_sends(
    api: Any, tmp_path: Path
) -> None:
    t = tenant(api, credit="5.00")
    _import(api, LATER, "2099-01-01", "0.02")
    response = _activate(api, LATER)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "default",
        "version": LATER,
        "effective_from": "2099-01-01",
        "pinned": True,
    }
    assert (tmp_path / "cards" / "default" / PIN).read_text() == f"{LATER}\n{_today()}\n"
    assert _quote(api) == (LATER, "0.0300")
    amount, rate = _sent_rate(t)
    assert amount == "0.0300"
    assert rate.startswith(f"default@{LATER}:sms.csv:")
    assert _listed(api) == {
        FIRST_SHIPPED: (False, False),
        SHIPPED: (False, False),
        LATER: (True, True),
    }


def test_activating_the_old_version_rolls_back_quotes_and_sends(api: Any) -> None:
    t = tenant(api, credit="5.00")
    _import(api, LATER, "2099-01-01", "0.02")
    assert _activate(api, LATER).status_code == 200
    assert _sent_rate(t)[0] == "0.0300"
    response = _activate(api, SHIPPED)
    assert response.status_code == 200, response.text
    assert (response.json()["version"], response.json()["pinned"]) == (SHIPPED, True)
    assert _quote(api) == (SHIPPED, "0.0100")
    amount, rate = _sent_rate(t)
    assert (amount, rate.split(":")[0]) == ("0.0100", f"default@{SHIPPED}")
    assert _listed(api) == {
        FIRST_SHIPPED: (False, False),
        SHIPPED: (True, True),
        LATER: (False, False),
    }


def test_deactivating_gives_the_choice_back_to_the_effective_dates(api: Any) -> None:
    t = tenant(api, credit="5.00")
    _import(api, SAME_DAY, "2026-12-01", "0.01")
    _import(api, LATER, "2099-01-01", "0.02")
    assert _quote(api) == (SAME_DAY, "0.0200")  # by its dates
    assert _activate(api, SHIPPED).status_code == 200
    assert _quote(api) == (SHIPPED, "0.0100")
    response = _deactivate(api)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "default",
        "version": SAME_DAY,
        "effective_from": "2026-12-01",
        "pinned": False,
    }
    assert _quote(api) == (SAME_DAY, "0.0200")
    assert _sent_rate(t)[1].startswith(f"default@{SAME_DAY}:")
    assert _listed(api) == {
        FIRST_SHIPPED: (False, False),
        SHIPPED: (False, False),
        SAME_DAY: (True, False),
        LATER: (False, False),
    }
    again = _deactivate(api)  # no pin: nothing to remove
    assert (again.status_code, again.json()) == (200, response.json())


def test_activating_the_pinned_version_again_is_a_200_that_changes_nothing(
    api: Any, tmp_path: Path
) -> None:
    _import(api, LATER, "2099-01-01", "0.02")
    first = _activate(api, LATER)
    pin = tmp_path / "cards" / "default" / PIN
    before = pin.stat()
    again = _activate(api, LATER)
    assert (again.status_code, again.json()) == (200, first.json())
    after = pin.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_shipped_card_is_pinned_in_the_rate_cards_dir_and_the_pin_is_no_version(
    api: Any, tmp_path: Path
) -> None:
    response = _activate(api, SHIPPED, "passthrough")
    assert response.status_code == 200, response.text
    assert response.json()["pinned"] is True
    assert (tmp_path / "cards" / "passthrough" / PIN).read_text() == f"{SHIPPED}\n{_today()}\n"
    assert not (shipped_cards_dir() / "passthrough" / PIN).exists()
    assert _listed(api, "passthrough") == {FIRST_SHIPPED: (False, False), SHIPPED: (True, True)}
    removed = _deactivate(api, "passthrough")
    assert (removed.status_code, removed.json()["pinned"]) == (200, False)
    assert not (tmp_path / "cards" / "passthrough" / PIN).exists()


def test_an_unknown_card_or_version_is_a_404_and_changes_nothing(api: Any) -> None:
    _import(api, LATER, "2099-01-01", "0.02")
    assert _activate(api, LATER).status_code == 200
    before = _listed(api)
    for response, detail in [
        (_activate(api, "2099.9.9"), "rate card 'default' has no version '2099.9.9'"),
        (_activate(api, SHIPPED, "nosuchcard"), "no rate card named 'nosuchcard'"),
        (_deactivate(api, "nosuchcard"), "no rate card named 'nosuchcard'"),
        (_activate(api, SHIPPED, "Not.A.Name"), "'Not.A.Name' is not a rate card name"),
    ]:
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "rate_card_not_found"
        assert response.json()["detail"].startswith(detail), response.json()
    assert _listed(api) == before
    assert _quote(api) == (LATER, "0.0300")


def test_an_account_key_cannot_activate_or_deactivate_and_changes_nothing(api: Any) -> None:
    t = tenant(api, number=None)
    _import(api, LATER, "2099-01-01", "0.02")
    for response in (
        _activate(api, LATER, **t.auth),
        _deactivate(api, **t.auth),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "admin_required"
    assert _quote(api) == (SHIPPED, "0.0100")
    assert _listed(api) == {
        FIRST_SHIPPED: (False, False),
        SHIPPED: (True, False),
        LATER: (False, False),
    }


# the loader, as every server process uses it


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """A rate cards dir holding `default` version LATER (effective 2099) beside the shipped one."""
    cards = tmp_path / "rate_cards"
    later = copy_card(
        tmp_path / "later",
        header={"version": f'"{LATER}"', "effective_from": "2099-01-01"},
        replace={"sms.csv": ("outbound,US,0,", "outbound,US,0.02,")},
    )
    import_card(later, cards)
    return cards


def _today() -> str:
    """Today's UTC date as a pin records it."""
    return dt.datetime.now(dt.UTC).date().isoformat()


def _pin_as_another_process(directory: Path, version: str, on: dt.date | None = None) -> None:
    """Write the pin as `activate_card` does in another process (this one's cache not told):
    the version, then the UTC day it was set on (default today)."""
    day = on or dt.datetime.now(dt.UTC).date()
    staging = directory / "default" / f".{PIN}.other"
    staging.write_text(f"{version}\n{day.isoformat()}\n")
    os.replace(staging, directory / "default" / PIN)


def test_a_pin_written_by_another_process_is_seen_at_the_next_load(directory: Path) -> None:
    assert load_card(directory=directory).version == SHIPPED  # cached now
    _pin_as_another_process(directory, LATER)
    assert load_card(directory=directory).version == LATER
    _pin_as_another_process(directory, SHIPPED)  # within the same clock tick, most likely
    assert load_card(directory=directory).version == SHIPPED
    (directory / "default" / PIN).unlink()
    _pin_as_another_process(directory, LATER)
    (directory / "default" / PIN).unlink()
    assert load_card(directory=directory).version == SHIPPED


def test_a_named_version_and_a_past_day_ignore_the_pin(directory: Path) -> None:
    _pin_as_another_process(directory, LATER)
    assert load_card(directory=directory).version == LATER
    assert load_card("default", SHIPPED, directory=directory).version == SHIPPED
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert load_card(at=yesterday, directory=directory).version == shipped_on(yesterday)
    assert load_card(at=dt.date(2100, 1, 1), directory=directory).version == LATER
    assert [c.version for c in list_cards(directory) if c.name == "default"] == [
        FIRST_SHIPPED,
        SHIPPED,
        LATER,
    ]


def test_a_pin_holds_from_the_day_it_was_set_so_a_period_that_began_before_midnight_uses_it(
    directory: Path,
) -> None:
    """The monthly cycle prices a period's free credit at the period's first day, which may be
    yesterday when the cycle runs after midnight: a pin set before that day holds for it."""
    today = dt.datetime.now(dt.UTC).date()
    _pin_as_another_process(directory, LATER, on=today - dt.timedelta(days=10))
    assert load_card(at=today - dt.timedelta(days=1), directory=directory).version == LATER
    assert load_card(at=today - dt.timedelta(days=10), directory=directory).version == LATER
    before = today - dt.timedelta(days=11)
    assert load_card(at=before, directory=directory).version == shipped_on(before)


def test_a_pin_naming_a_missing_version_is_refused_with_the_way_out(directory: Path) -> None:
    _pin_as_another_process(directory, "2000.1.1")
    with pytest.raises(RateCardNotFoundError) as refused:
        load_card(directory=directory)
    assert refused.value.detail == (
        "rate card 'default' is pinned to version '2000.1.1', which it does not have: "
        "`talktime rates activate default VERSION` pins another, "
        "`talktime rates deactivate default` goes back to the effective dates"
    )


# the CLI


@pytest.fixture
def cards_dir(monkeypatch: pytest.MonkeyPatch, directory: Path) -> Iterator[Path]:
    """Settings with no config file and `directory` as the rate cards dir."""
    monkeypatch.setenv("TALKTIME_CONFIG", "")
    monkeypatch.setenv("TALKTIME_RATE_CARDS_DIR", str(directory))
    monkeypatch.delenv("TALKTIME_RATE_CARD", raising=False)
    get_settings.cache_clear()
    yield directory
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["rates", *args])
    return result.exit_code, result.stdout, result.stderr


def _cli_listed() -> dict[str, tuple[bool, bool]]:
    code, out, err = _run("list", "--json")
    assert code == 0, err
    return {
        c["version"]: (c["in_force"], c["pinned"])
        for c in json.loads(out)
        if c["name"] == "default"
    }


def test_rates_activate_pins_a_version_that_rates_list_marks_and_deactivate_removes(
    cards_dir: Path,
) -> None:
    first = {FIRST_SHIPPED: (False, False)}
    assert _cli_listed() == {**first, SHIPPED: (True, False), LATER: (False, False)}
    code, out, err = _run("activate", "default", LATER)
    assert code == 0, err
    assert f"in force: default@{LATER} (pinned)" in out
    assert _cli_listed() == {**first, SHIPPED: (False, False), LATER: (True, True)}
    assert load_card(directory=cards_dir).version == LATER
    code, out, err = _run("list")
    assert code == 0, err
    assert "pinned" in out
    code, out, err = _run("activate", "default", LATER, "--json")  # again: nothing changes
    assert (code, json.loads(out)) == (0, {"name": "default", "version": LATER, "pinned": True})
    code, out, err = _run("deactivate", "default")
    assert code == 0, err
    assert f"in force: default@{SHIPPED} (effective from 2026-12-01)" in out
    assert _cli_listed() == {**first, SHIPPED: (True, False), LATER: (False, False)}


def test_rates_activate_of_an_unknown_version_is_a_clean_refusal(cards_dir: Path) -> None:
    code, _, err = _run("activate", "default", "2099.9.9")
    assert code == 1
    assert "error[rate_card_not_found]: rate card 'default' has no version '2099.9.9'" in err
    assert "Traceback" not in err
    assert not (cards_dir / "default" / PIN).exists()


def test_a_call_authorized_on_the_first_shipped_version_completes_on_it(api: Any) -> None:
    # 2026.11.1 rounded each call leg up to the cent; 2026.12.1 (in force) bills the exact rate
    t = tenant(api, credit="5.00")
    assert _activate(api, FIRST_SHIPPED).status_code == 200
    body = {"direction": "outbound", "from": t.number, "to": "+14155550111", "user": t.user}
    old = t.post("/v1/calls", body).json()
    assert old["rate_card"] == f"default@{FIRST_SHIPPED}"
    assert _deactivate(api).status_code == 200
    new = t.post("/v1/calls", body).json()
    assert new["rate_card"] == f"default@{SHIPPED}"
    done_old = t.post(f"/v1/calls/{old['id']}/complete", {"duration": 70}).json()
    done_new = t.post(f"/v1/calls/{new['id']}/complete", {"duration": 70}).json()
    assert (done_old["amount"], done_old["lines"][0]["rounding"]) == ("0.0300", "up_to_cent")
    assert (done_new["amount"], done_new["lines"][0]["rounding"]) == ("0.0260", "none")
    assert done_old["lines"][0]["rate"].startswith(f"default@{FIRST_SHIPPED}:voice.csv:")
