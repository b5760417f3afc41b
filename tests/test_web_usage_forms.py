"""The Usage page's forms and the calculator's suggestion in a real headless Chromium (Debian's,
driven by Playwright) against a real `talktime serve` with the `test` payment provider, so
"Buy credits" really buys.

Each test guards a defect found by the web audit of afab695: a double click bought twice (a new
Idempotency-Key per POST, the button live while in flight); buying failed on plain HTTP at a
host other than localhost (`crypto.randomUUID` exists only in secure contexts); every money
label said "(USD)" whatever the account's currency; saving one settings form wiped unsaved edits
in the others; auto-recharge could not be turned off with its boxes empty; the calculator's
smart-encoding suggestion printed invisible characters raw and offered smart encoding for a text
it would empty. Like tests/test_web_browser.py, a missing browser fails on CI (`CI=true`) and is
skipped with a loud warning elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from talktime import money
from talktime.rating import shipped_card_dir
from test_web_browser import TIMEOUT_MS, _sign_in, _unavailable

import apikit
import browser
import live

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OTHER_HOST = "talktime.test"  # resolved to 127.0.0.1 by Chromium only: plain HTTP, not localhost


@pytest.fixture(scope="module")
def playwright() -> Iterator[tuple[Any, Path]]:
    """Playwright and the path of Debian's Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is missing ({exc}); pip install -e '.[dev]'")
    try:
        path = browser.ensure_chromium()
    except browser.ChromiumUnavailableError as exc:
        _unavailable(str(exc))
    with sync_playwright() as pw:
        yield pw, path


def _launch(playwright: tuple[Any, Path], *extra: str) -> Any:
    from playwright.sync_api import Error

    pw, path = playwright
    try:
        return pw.chromium.launch(executable_path=str(path), args=[*browser.ARGS, *extra])
    except Error as exc:
        _unavailable(f"{path} did not start: {exc}")


@pytest.fixture(scope="module")
def chromium(playwright: tuple[Any, Path]) -> Iterator[Any]:
    instance = _launch(playwright)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server on a fresh SQLite database, with the admin key and the `test` provider."""
    tmp = tmp_path_factory.mktemp("web-forms")
    with live.serve(
        f"sqlite:///{tmp / 'talktime.db'}",
        TALKTIME_ADMIN_KEY=apikit.ADMIN_KEY,
        TALKTIME_RATE_CARDS_DIR=str(tmp / "cards"),
        TALKTIME_PAYMENT_PROVIDER="test",
    ) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def client(site: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site, timeout=10) as c:
        yield c


def _watch(pg: Any) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    console: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda message: console.append(message.text))
    return errors, console


def _clean(errors: list[str], console: list[str]) -> None:
    assert not errors, f"JavaScript errors on the page: {errors}"
    refused = [text for text in console if "Content Security Policy" in text]
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors, console = _watch(pg)
    try:
        yield pg
    finally:
        context.close()
    _clean(errors, console)


def _purchases(t: apikit.Tenant) -> list[str]:
    """The amounts of the account's purchased grants (`POST /v1/credits`), newest first."""
    return [
        e["amount"]
        for e in t.ledger(kind="grant")
        if str(e["reference"] or "").startswith("purchase:")
    ]


def _credit_posts(pg: Any) -> list[str]:
    """The Idempotency-Key of every `POST /v1/credits` the page sends, as it sends them."""
    keys: list[str] = []

    def seen(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/v1/credits"):
            keys.append(request.headers.get("idempotency-key", ""))

    pg.on("request", seen)
    return keys


def test_a_double_click_on_buy_credits_buys_once(
    site: str, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    t = apikit.tenant(client, number=None)
    _sign_in(page, site, t.key)
    keys = _credit_posts(page)
    buy = page.get_by_role("button", name="Buy credits")

    # two clicks in one task: the second surely lands while the first purchase is in flight
    page.get_by_label("Amount (USD)").fill("7.00")
    buy.evaluate("button => { button.click(); button.click(); }")
    expect(page.locator("#buy-status")).to_have_text("7.0000 USD of credit added.")
    page.wait_for_timeout(300)  # room for a second purchase, had one been sent
    assert _purchases(t) == ["7.0000"]
    assert len(keys) == 1, keys
    assert UUID4.match(keys[0]), keys
    expect(page.locator("#paid")).to_have_text(f"{t.balance()['paid']} USD")

    # two clicks of the mouse, the second at once (forced: the button may be disabled)
    page.get_by_label("Amount (USD)").fill("8.00")
    buy.click()
    buy.click(force=True)
    expect(page.locator("#buy-status")).to_have_text("8.0000 USD of credit added.")
    page.wait_for_timeout(300)
    assert _purchases(t) == ["8.0000", "7.0000"]
    assert len(keys) == 2, keys
    assert keys[0] != keys[1], keys


def test_a_double_enter_in_the_amount_buys_once(site: str, client: httpx.Client, page: Any) -> None:
    from playwright.sync_api import expect

    t = apikit.tenant(client, number=None)
    _sign_in(page, site, t.key)
    keys = _credit_posts(page)
    box = page.get_by_label("Amount (USD)")
    box.fill("4.00")
    box.press("Enter")
    box.press("Enter")
    expect(page.locator("#buy-status")).to_have_text("4.0000 USD of credit added.")
    box.press("Enter")  # the box was emptied by the purchase: nothing more is bought
    page.wait_for_timeout(300)
    assert _purchases(t) == ["4.0000"]
    assert len(keys) == 1, keys


def test_a_purchase_retried_after_a_lost_answer_is_replayed_not_bought_again(
    site: str, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    t = apikit.tenant(client, number=None)
    _sign_in(page, site, t.key)
    keys = _credit_posts(page)

    def lose_the_answer(route: Any) -> None:
        route.fetch()  # the server takes the payment...
        route.abort("failed")  # ...and the answer never reaches the page

    page.route("**/v1/credits", lose_the_answer, times=1)
    page.get_by_label("Amount (USD)").fill("5.00")
    buy = page.get_by_role("button", name="Buy credits")
    buy.click()
    expect(page.locator("#buy-status")).to_have_class("error")
    expect(buy).to_be_enabled()
    assert _purchases(t) == ["5.0000"]

    with page.expect_response("**/v1/credits") as answer:
        buy.click()  # the same purchase again: the same key, so the server replays it
    assert answer.value.headers.get("idempotent-replayed") == "true"
    expect(page.locator("#buy-status")).to_have_text("5.0000 USD of credit added.")
    assert _purchases(t) == ["5.0000"]
    assert len(keys) == 2, keys
    assert keys[0] == keys[1], keys

    # a new amount is a new purchase, with a new key (the old one would be a 409 conflict)
    page.get_by_label("Amount (USD)").fill("6.00")
    buy.click()
    expect(page.locator("#buy-status")).to_have_text("6.0000 USD of credit added.")
    assert _purchases(t) == ["6.0000", "5.0000"]
    assert len(keys) == 3, keys
    assert keys[2] != keys[0], keys


def test_buy_credits_works_on_plain_http_at_a_host_other_than_localhost(
    site: str, client: httpx.Client, playwright: tuple[Any, Path]
) -> None:
    from playwright.sync_api import expect

    port = httpx.URL(site).port
    other = _launch(playwright, f"--host-resolver-rules=MAP {OTHER_HOST} 127.0.0.1")
    try:
        context = other.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        pg = context.new_page()
        errors, console = _watch(pg)
        t = apikit.tenant(client, number=None)
        _sign_in(pg, f"http://{OTHER_HOST}:{port}", t.key)
        # what made "Buy credits" throw: no secure context, so no crypto.randomUUID
        assert pg.evaluate("window.isSecureContext") is False
        assert pg.evaluate("typeof crypto.randomUUID") == "undefined"
        keys = _credit_posts(pg)
        pg.get_by_label("Amount (USD)").fill("3.00")
        pg.get_by_role("button", name="Buy credits").click()
        expect(pg.locator("#buy-status")).to_have_text("3.0000 USD of credit added.")
        assert _purchases(t) == ["3.0000"]
        assert len(keys) == 1, keys
        assert UUID4.match(keys[0]), keys
        context.close()
        _clean(errors, console)
    finally:
        other.close()


def _import_euro_card(client: httpx.Client) -> None:
    """`euro`: the shipped default card with its currency EUR."""
    source = shipped_card_dir("default")
    files = {name: (source / name).read_text() for name in ("sms.csv", "voice.csv", "numbers.csv")}
    header = (source / "card.toml").read_text()
    assert 'name = "default"' in header
    assert 'currency = "USD"' in header
    files["card.toml"] = header.replace('name = "default"', 'name = "euro"').replace(
        'currency = "USD"', 'currency = "EUR"'
    )
    response = client.post("/v1/admin/rate-cards", json=files, headers=apikit.ADMIN)
    assert response.status_code == 201, response.text


def test_money_labels_show_the_accounts_currency(
    site: str, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    _import_euro_card(client)
    t = apikit.tenant(client, rate_card="euro", number=None)
    assert t.balance()["currency"] == "EUR"
    _sign_in(page, site, t.key)
    expect(page.locator("#paid")).to_have_text(f"{t.balance()['paid']} EUR")
    for label in (
        "When paid credit falls below (EUR)",
        "Add (EUR)",
        "Most paid credit to spend in a month (EUR; empty for no limit)",
        "Alert when available credit falls below (EUR; empty for off)",
        "Amount (EUR)",
    ):
        expect(page.get_by_label(label, exact=True)).to_have_count(1)
    labels = page.locator("#account label").all_inner_texts()
    assert not [text for text in labels if "USD" in text], labels

    page.get_by_label("Amount (EUR)").fill("2.00")
    page.get_by_role("button", name="Buy credits").click()
    expect(page.locator("#buy-status")).to_have_text("2.0000 EUR of credit added.")


def test_saving_one_settings_form_keeps_unsaved_edits_in_the_others(
    site: str, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    t = apikit.tenant(client, number=None)
    _sign_in(page, site, t.key)
    limit = page.get_by_label("Most paid credit to spend in a month")
    lowbal = page.get_by_label("Alert when available credit falls below")
    limit.fill("40")  # typed, not saved
    lowbal.fill("3")  # typed, not saved

    page.get_by_label("Recharge automatically").check()
    page.get_by_label("When paid credit falls below").fill("2.50")
    page.get_by_label("Add (USD)").fill("15")
    page.get_by_role("button", name="Save auto-recharge").click()
    expect(page.locator("#recharge-status")).to_have_text("Auto-recharge saved.")
    # the saved form shows what was stored; the others keep what was typed
    expect(page.get_by_label("When paid credit falls below")).to_have_value("2.5000")
    expect(page.get_by_label("Add (USD)")).to_have_value("15.0000")
    expect(limit).to_have_value("40")
    expect(lowbal).to_have_value("3")
    assert t.balance()["monthly_limit"] is None
    assert t.balance()["low_balance_threshold"] is None

    # a box the user has not edited since it was filled still takes the server's value: the
    # limit set elsewhere shows once the page refreshes after a save, while an auto-recharge
    # edit typed meanwhile is kept
    limit.fill("")  # back to what the page filled in (no limit): not an edit any more
    response = client.put(
        "/v1/settings/monthly-limit", json={"monthly_limit": "25"}, headers=t.auth
    )
    assert response.status_code == 200, response.text
    page.get_by_label("Add (USD)").fill("30")  # typed, not saved
    page.get_by_role("button", name="Save low-balance alert").click()
    expect(page.locator("#lowbal-status")).to_have_text("Low-balance alert saved.")
    assert money.parse(t.balance()["low_balance_threshold"]) == 3_000_000
    expect(lowbal).to_have_value("3.0000")
    expect(limit).to_have_value(t.balance()["monthly_limit"])  # not edited since it was filled
    expect(page.get_by_label("Add (USD)")).to_have_value("30")  # edited: kept
    expect(page.get_by_label("Recharge automatically")).to_be_checked()
    assert money.parse(t.balance()["auto_recharge"]["amount"]) == 15_000_000


def test_auto_recharge_turns_off_with_empty_boxes_and_on_needs_both(
    site: str, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    t = apikit.tenant(client, number=None)
    response = client.put(
        "/v1/settings/auto-recharge",
        json={"enabled": True, "threshold": "5", "amount": "10"},
        headers=t.auth,
    )
    assert response.status_code == 200, response.text
    _sign_in(page, site, t.key)
    enabled = page.get_by_label("Recharge automatically")
    threshold = page.get_by_label("When paid credit falls below")
    amount = page.get_by_label("Add (USD)")
    expect(enabled).to_be_checked()
    threshold.fill("")
    amount.fill("")
    enabled.uncheck()
    page.get_by_role("button", name="Save auto-recharge").click()
    expect(page.locator("#recharge-status")).to_have_text("Auto-recharge saved.")
    auto = t.balance()["auto_recharge"]
    assert auto["enabled"] is False
    # {"enabled": false} keeps the stored values, and the form shows them again
    assert (money.parse(auto["threshold"]), money.parse(auto["amount"])) == (5_000_000, 10_000_000)
    expect(threshold).to_have_value(auto["threshold"])
    expect(amount).to_have_value(auto["amount"])

    # turning it on needs both: the API's sentence, and nothing changes
    refused = client.put("/v1/settings/auto-recharge", json={"enabled": True}, headers=t.auth)
    assert refused.status_code == 422, refused.text
    threshold.fill("")
    amount.fill("")
    enabled.check()
    page.get_by_role("button", name="Save auto-recharge").click()
    expect(page.locator("#recharge-status")).to_have_text(refused.json()["detail"])
    expect(page.locator("#recharge-status")).to_have_class("error")
    assert t.balance()["auto_recharge"]["enabled"] is False


def test_calculator_names_invisible_characters_in_the_smart_encoding_suggestion(
    site: str, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site}/calculator")
    box = page.get_by_label("Message")
    box.fill("hi\u200b there")
    expect(page.locator("#encoding")).to_have_text("UCS-2")
    suggestion = page.locator("#suggestion")
    expect(suggestion).to_have_text(
        "Smart encoding would replace U+200B → nothing and send this as GSM-7."
    )
    expect(page.locator("#non-gsm")).to_have_text("U+200B")
    expect(page.locator("#highlighted mark")).to_have_text("U+200B")
    assert "\u200b" not in suggestion.inner_text()

    # a text smart encoding would empty: no suggestion, since the API refuses it smart-encoded
    box.fill("\u200b\u2060")
    expect(page.locator("#encoding")).to_have_text("UCS-2")
    expect(page.locator("#cost")).to_have_text("0.0100 USD")
    expect(suggestion).to_be_hidden()
    refused = client.post(
        "/calculator/estimate",
        json={"text": "\u200b\u2060", "smart_encoding": True, "country": "US"},
    )
    assert refused.status_code == 422, refused.text
    page.get_by_label("Smart encoding", exact=False).check()
    expect(page.locator("#cost-note")).to_have_text(refused.json()["detail"])
