"""The pages in a real headless Chromium (Debian's, driven by Playwright) against a real
`talktime serve` on a fresh SQLite database: the calculator live as you type, the Usage page
saving settings through the API, the chart, and screenshots of the pages in test-artifacts/.

On CI (`CI=true`) a missing browser or Playwright fails with the reason; elsewhere these tests
are skipped with a loud warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from talktime import money

import apikit
import browser
import live

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"a browser is required on CI: {reason}")
    warnings.warn(f"SKIPPING browser tests: {reason}", stacklevel=2)
    pytest.skip(f"browser unavailable: {reason}")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Debian Chromium for the module."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is missing ({exc}); pip install -e '.[dev]'")
    try:
        path = browser.ensure_chromium()
    except browser.ChromiumUnavailableError as exc:
        _unavailable(str(exc))
    with sync_playwright() as pw:
        try:
            instance = pw.chromium.launch(executable_path=str(path), args=browser.ARGS)
        except Error as exc:
            _unavailable(f"{path} did not start: {exc}")
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server on a fresh SQLite database with the admin key set."""
    tmp = tmp_path_factory.mktemp("web")
    with live.serve(
        f"sqlite:///{tmp / 'talktime.db'}",
        TALKTIME_ADMIN_KEY=apikit.ADMIN_KEY,
        TALKTIME_RATE_CARDS_DIR=str(tmp / "cards"),
    ) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def account(site: str) -> Iterator[apikit.Tenant]:
    """An account with paid credit, a number (its first month charged) and three SMS sent."""
    with httpx.Client(base_url=site, timeout=10) as client:
        t = apikit.tenant(client, credit="5.00")
        for text in ("hello", "x" * 200, "see you 😀"):
            response = t.sms("+14155550111", text)
            assert response.status_code == 201, response.text
        yield t


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    console: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda message: console.append(message.text))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    # the pages are served with a Content-Security-Policy: nothing they do may be refused by it
    # (Chromium logs "Refused to ... because it violates the following Content Security Policy
    # directive: ..." for an inline script, handler or style, or a fetch elsewhere)
    refused = [text for text in console if "Content Security Policy" in text]
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_calculator_shows_ucs2_and_the_segments_as_you_type_an_emoji(site: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site}/calculator")
    box = page.get_by_label("Message")
    box.fill("a" * 69)
    expect(page.locator("#encoding")).to_have_text("GSM-7")
    expect(page.locator("#segments")).to_have_text("1")
    box.press("End")
    box.press_sequentially(" 😀")  # typed: 69 + 1 + one emoji (2 UTF-16 units) = 72 units
    expect(page.locator("#encoding")).to_have_text("UCS-2")
    expect(page.locator("#units")).to_have_text("72")
    expect(page.locator("#segments")).to_have_text("2")  # UCS-2 splits at 67 units a part
    expect(page.locator("#chars")).to_have_text("71")
    expect(page.locator("#parts li")).to_have_count(2)
    expect(page.locator("#highlighted mark")).to_have_text("😀")
    expect(page.locator("#cost")).to_have_text("0.0200 USD")  # 2 x $0.01 to the US
    page.get_by_label("Destination").select_option("GB")
    expect(page.locator("#cost")).to_have_text("0.1000 USD")  # 2 x ($0.01 + $0.04)
    expect(page.locator("#cost-note")).to_contain_text("example GB number")
    _shot(page, "calculator.png")


def test_the_pages_content_security_policy_is_enforced(site: str, chromium: Any) -> None:
    # what the policy is for, seen from the browser: an injected inline script does not run, a
    # fetch to another origin (where a stolen key would go) is refused, the page is not framed
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        pg = context.new_page()
        console: list[str] = []
        pg.on("console", lambda message: console.append(message.text))
        response = pg.goto(f"{site}/usage")
        assert response is not None
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        ran = pg.evaluate(
            """() => {
                const s = document.createElement("script");
                s.textContent = "window.injected = true";
                document.body.appendChild(s);
                return window.injected === true;
            }"""
        )
        assert ran is False
        sent = pg.evaluate(
            """() => fetch("http://127.0.0.1:9/steal").then(() => "sent", () => "refused")"""
        )
        assert sent == "refused"
        refused = [text for text in console if "Content Security Policy" in text]
        assert any("script-src" in text for text in refused), refused
        assert any("connect-src" in text for text in refused), refused

        framer = context.new_page()
        with framer.expect_console_message(lambda m: "frame-ancestors" in m.text) as blocked:
            framer.set_content(f'<iframe id="f" src="{site}/usage"></iframe>')
        assert "Content Security Policy" in blocked.value.text
        assert [f.url for f in framer.frames[1:]] != [f"{site}/usage"]
        assert framer.frame_locator("#f").locator("#signin-form").count() == 0
    finally:
        context.close()


def test_calculator_suggests_smart_encoding_and_applies_it(site: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site}/calculator")
    page.get_by_label("Message").fill("It’s “done”")
    expect(page.locator("#encoding")).to_have_text("UCS-2")
    expect(page.locator("#suggestion")).to_be_visible()
    expect(page.locator("#suggestion")).to_contain_text("’ → '")
    page.get_by_label("Smart encoding", exact=False).check()
    expect(page.locator("#encoding")).to_have_text("GSM-7")
    expect(page.locator("#suggestion")).to_be_hidden()


def test_calculator_is_usable_from_the_keyboard(site: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site}/calculator")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    page.get_by_label("Message").focus()
    page.keyboard.type("ok")
    page.keyboard.press("Tab")  # to the destination select
    expect(page.get_by_label("Destination")).to_be_focused()
    expect(page.locator("#chars")).to_have_text("2")


def _sign_in(page: Any, site: str, key: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site}/usage")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account")).to_be_visible()


def test_usage_page_shows_the_balance_chart_and_recent_charges(
    site: str, account: apikit.Tenant, page: Any
) -> None:
    from playwright.sync_api import expect

    _sign_in(page, site, account.key)
    balance = account.balance()
    expect(page.locator("#paid")).to_have_text(f"{balance['paid']} USD")
    expect(page.locator("#free")).to_have_text(f"{balance['free']} USD")
    expect(page.locator("#held")).to_have_text(f"{balance['held']} USD")
    expect(page.locator("#chart svg")).to_be_visible()
    assert page.locator("#chart rect.bar-sms").count() >= 1
    assert page.locator("#chart rect.bar-number").count() >= 1
    assert page.locator("#chart rect.bar-call").count() == 0
    # 1 + 2 + 1 segments at $0.01, and the number's first month at $1 (the default card)
    expect(page.locator("#chart-total")).to_have_text(
        "This period: SMS 0.0400 USD, Numbers 1.0000 USD."
    )
    expect(page.locator("#recent tr")).to_have_count(4)  # the number's month and three SMS
    expect(page.locator("#recent")).to_contain_text("outbound SMS to +14155550111")
    expect(page.locator("#recent")).to_contain_text("1 segment × 0.0100")
    expect(page.locator("#recent")).to_contain_text("2 segments × 0.0100")
    expect(page.locator("#recent")).to_contain_text("1 month × 1.0000")
    _shot(page, "usage.png")


def test_usage_page_saves_auto_recharge_and_monthly_limit_through_the_api(
    site: str, account: apikit.Tenant, page: Any
) -> None:
    from playwright.sync_api import expect

    _sign_in(page, site, account.key)
    page.get_by_label("Recharge automatically").check()
    page.get_by_label("When paid credit falls below").fill("3.50")
    page.get_by_label("Add (USD)").fill("20")
    page.get_by_role("button", name="Save auto-recharge").click()
    expect(page.locator("#recharge-status")).to_have_text("Auto-recharge saved.")
    auto = account.balance()["auto_recharge"]
    assert auto["enabled"] is True
    assert money.parse(auto["threshold"]) == 3_500_000
    assert money.parse(auto["amount"]) == 20_000_000

    page.get_by_label("Most paid credit to spend in a month").fill("40")
    page.get_by_role("button", name="Save monthly limit").click()
    expect(page.locator("#limit-status")).to_have_text("Monthly limit saved.")
    assert money.parse(account.balance()["monthly_limit"]) == 40_000_000
    expect(page.locator("#limit")).to_have_text(f"{account.balance()['monthly_limit']} USD")

    page.get_by_label("Recharge automatically").uncheck()
    page.get_by_role("button", name="Save auto-recharge").click()
    expect(page.locator("#recharge-status")).to_have_text("Auto-recharge saved.")
    assert account.balance()["auto_recharge"]["enabled"] is False


def test_usage_page_sets_and_turns_off_the_low_balance_alert_through_the_api(
    site: str, account: apikit.Tenant, page: Any
) -> None:
    from playwright.sync_api import expect

    assert account.balance()["low_balance_threshold"] is None
    _sign_in(page, site, account.key)
    expect(page.locator("#lowbal")).to_have_text("Off")
    expect(page.get_by_label("Alert when available credit falls below")).to_have_value("")

    page.get_by_label("Alert when available credit falls below").fill("5.00")
    page.get_by_role("button", name="Save low-balance alert").click()
    expect(page.locator("#lowbal-status")).to_have_text("Low-balance alert saved.")
    expect(page.locator("#lowbal-status")).to_have_class("ok")
    saved = account.balance()["low_balance_threshold"]
    assert money.parse(saved) == 5_000_000
    expect(page.locator("#lowbal")).to_have_text(f"{saved} USD")
    expect(page.get_by_label("Alert when available credit falls below")).to_have_value(saved)

    # a bad value, submitted from the keyboard: the API's own sentence, and nothing changes
    refused = account.client.put(
        "/v1/settings/low-balance", json={"low_balance_threshold": "5,00"}, headers=account.auth
    )
    assert refused.status_code == 422, refused.text
    box = page.get_by_label("Alert when available credit falls below")
    box.fill("5,00")
    box.press("Enter")
    expect(page.locator("#lowbal-status")).to_have_text(refused.json()["detail"])
    expect(page.locator("#lowbal-status")).to_have_class("error")
    assert account.balance()["low_balance_threshold"] == saved
    expect(page.locator("#lowbal")).to_have_text(f"{saved} USD")
    _shot(page, "usage-low-balance.png")

    box.fill("")
    page.get_by_role("button", name="Save low-balance alert").click()
    expect(page.locator("#lowbal-status")).to_have_text("Low-balance alert turned off.")
    assert account.balance()["low_balance_threshold"] is None
    expect(page.locator("#lowbal")).to_have_text("Off")


def test_usage_page_shows_the_api_sentence_of_a_refusal(
    site: str, account: apikit.Tenant, page: Any
) -> None:
    from playwright.sync_api import expect

    _sign_in(page, site, account.key)
    refused = account.post("/v1/credits", {"amount": "10.00"})  # the `manual` provider
    assert refused.status_code >= 400
    page.get_by_label("Amount (USD)").fill("10.00")
    page.get_by_role("button", name="Buy credits").click()
    expect(page.locator("#buy-status")).to_have_text(refused.json()["detail"])
    expect(page.locator("#buy-status")).to_have_class("error")


def test_usage_page_refuses_a_bad_key_with_the_api_sentence(site: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site}/usage")
    page.get_by_label("API key").fill("tt_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    detail = httpx.get(
        f"{site}/v1/balance", headers={"Authorization": "Bearer tt_not_a_key"}
    ).json()["detail"]
    expect(page.locator("#signin-error")).to_have_text(detail)
    expect(page.locator("#account")).to_be_hidden()


def test_usage_page_downloads_the_statement_as_csv_and_pdf(
    site: str, account: apikit.Tenant, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _sign_in(page, site, account.key)
    month = account.balance()["period_start"][:7]
    page.get_by_label("Month (YYYY-MM)").fill(month)
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    csv_path = tmp_path / "statement.csv"
    csv_download.value.save_as(csv_path)
    api_csv = account.client.get(
        f"/v1/statements/{month}", headers={**account.auth, "Accept": "text/csv"}
    )
    assert csv_path.read_text() == api_csv.text
    assert "Closing balance" in api_csv.text
    expect(page.locator("#statement-status")).to_have_text(
        f"Statement for {month} downloaded (CSV)."
    )
    with page.expect_download() as pdf_download:
        page.get_by_role("button", name="Download PDF").click()
    pdf_path = tmp_path / "statement.pdf"
    pdf_download.value.save_as(pdf_path)
    assert pdf_path.read_bytes().startswith(b"%PDF")
    assert pdf_download.value.suggested_filename == f"talktime-statement-{month}.pdf"
