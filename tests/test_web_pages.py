"""Web pages in-process (SQLite and PostgreSQL): routes, every asset served by the app, labels,
and the calculator's estimate against the rating engine and the API's quote."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (tag, name) in {("link", "href"), ("script", "src"), ("img", "src")}:
                self.urls.append(value)


class _Inline(HTMLParser):
    """What a `script-src 'self'; style-src 'self'` policy blocks: inline scripts, `<style>`
    elements, `on*` event handler attributes, `style` attributes and `javascript:` URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")


PAGE_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize("path", ["/usage", "/calculator"])
def test_a_page_and_every_asset_it_uses_send_the_security_headers(
    api_without_db: Any, path: str
) -> None:
    # the audit: no CSP, no framing rule, no nosniff on the page holding an API key in
    # sessionStorage beside a "Buy credits" button; each header once, with its exact value
    page = api_without_db.get(path)
    parser = _Assets()
    parser.feed(page.text)
    assert parser.urls
    for url in [path, *parser.urls]:
        for method in ("GET", "HEAD"):
            response = api_without_db.request(method, url)
            assert response.status_code == 200, (method, url)
            for name, value in PAGE_SECURITY_HEADERS.items():
                assert response.headers.get_list(name) == [value], (method, url, name)


def test_a_revalidated_asset_keeps_the_security_headers(api_without_db: Any) -> None:
    first = api_without_db.get("/static/usage.js")
    again = api_without_db.get("/static/usage.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    for name, value in PAGE_SECURITY_HEADERS.items():
        assert again.headers.get_list(name) == [value], name


@pytest.mark.parametrize("path", ["/usage", "/calculator"])
def test_the_pages_have_nothing_inline_the_policy_would_block(
    api_without_db: Any, path: str
) -> None:
    # the browser tests show the pages work under the policy; this names the offending markup
    parser = _Inline()
    parser.feed(api_without_db.get(path).text)
    assert parser.found == [], f"{path}: {parser.found}"


def test_home_redirects_to_the_usage_page(api: Any) -> None:
    response = api.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/usage"


@pytest.mark.parametrize("path", ["/usage", "/calculator"])
def test_every_asset_a_page_uses_is_served_by_the_app(api: Any, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(response.text)
    assert parser.urls, "the page links its stylesheet and script"
    for url in parser.urls:
        assert url.startswith("/static/"), f"{url} is not served by the app"
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert asset.content
    assert not re.search(r"""(src|href)=["']https?://""", response.text)


def test_every_form_control_on_the_pages_has_a_label(api: Any) -> None:
    for path in ("/usage", "/calculator"):
        html = api.get(path).text
        ids = re.findall(r"<(?:input|select|textarea)\b[^>]*\bid=\"([^\"]+)\"", html)
        assert ids
        for control in ids:
            assert f'for="{control}"' in html, f"{path}: #{control} has no <label for>"


def test_every_aria_reference_on_the_pages_names_an_element_of_the_page(api: Any) -> None:
    for path in ("/usage", "/calculator"):
        html = api.get(path).text
        ids = set(re.findall(r'\bid="([^"]+)"', html))
        refs = re.findall(r'\baria-(?:labelledby|describedby)="([^"]+)"', html)
        assert refs
        for ref in (r for value in refs for r in value.split()):
            assert ref in ids, f"{path}: aria reference to a missing #{ref}"


@pytest.mark.parametrize(
    ("form", "shown", "button"),
    [
        ("recharge", None, "Save auto-recharge"),
        ("limit", "limit", "Save monthly limit"),
        ("lowbal", "lowbal", "Save low-balance alert"),
    ],
)
def test_each_usage_setting_has_a_form_a_status_line_and_a_save_button(
    api: Any, form: str, shown: str | None, button: str
) -> None:
    # the pattern every setting follows: a labelled fieldset, a status line the script writes
    # the outcome (or the API's sentence) into, announced by screen readers, and a submit button
    html = api.get("/usage").text
    opening = f'<form id="{form}-form" aria-labelledby="{form}-h">'
    found = re.search(re.escape(opening) + "(.*?)</form>", html, re.S)
    assert found, f"no #{form}-form"
    body = found.group(1)
    assert f'<legend id="{form}-h">' in body
    assert f'<p id="{form}-status" role="status"></p>' in body
    assert f'<button type="submit">{button}</button>' in body
    if shown is not None:  # the current value among the credit figures
        assert f'<dd id="{shown}">' in html


def test_pages_stay_out_of_the_openapi_schema(api_without_db: Any) -> None:
    paths = api_without_db.get("/openapi.json").json()["paths"]
    for page in ("/", "/usage", "/calculator", "/calculator/estimate"):
        assert page not in paths


def test_calculator_offers_the_countries_the_active_card_prices_outbound(api: Any) -> None:
    html = api.get("/calculator").text
    offered = set(re.findall(r'<option value="([A-Z]{2})"', html))
    assert offered == {"US", "CA", "GB", "IE", "DE", "FR", "AU", "MX"}  # default card's rows


def test_estimate_prices_an_emoji_message_per_segment_for_the_country(api: Any) -> None:
    text = "a" * 69 + "😀"  # 71 UTF-16 units: UCS-2, 2 parts of at most 67
    us = api.post("/calculator/estimate", json={"text": text, "country": "US"})
    assert us.status_code == 200, us.text
    body = us.json()
    assert (body["segments"], body["per_segment"], body["total"]) == (2, "0.0100", "0.0200")
    assert (body["card"], body["currency"]) == ("default", "USD")
    assert body["to"].startswith("+1")
    assert body["to"] in body["note"]
    gb = api.post("/calculator/estimate", json={"text": text, "country": "GB"}).json()
    assert (gb["segments"], gb["per_segment"], gb["total"]) == (2, "0.0500", "0.1000")
    assert "example GB number" in gb["note"]


def test_estimate_equals_the_api_quote_for_the_same_numbers(api: Any) -> None:
    text = "It’s “smart” – done"
    for smart in (False, True):
        est = api.post(
            "/calculator/estimate", json={"text": text, "country": "AU", "smart_encoding": smart}
        ).json()
        quote = api.post(
            "/v1/quotes/sms",
            json={"from": est["from"], "to": est["to"], "text": text, "smart_encoding": smart},
        ).json()
        assert est["total"] == quote["total"]
        assert est["rate"] == quote["lines"][0]["rate"]


def test_estimate_says_when_language_tables_would_count_differently(api: Any) -> None:
    text = "ç" * 100  # UCS-2 without tables (2 parts); Portuguese tables keep it GSM-7 (1 part)
    body = api.post(
        "/calculator/estimate", json={"text": text, "country": "US", "language": "pt"}
    ).json()
    assert body["segments"] == 2
    assert "national language tables" in body["note"]


def test_estimate_refusals_are_problems_with_a_sentence(api: Any) -> None:
    unknown = api.post("/calculator/estimate", json={"text": "hi", "country": "ZZ"})
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["code"] == "country_not_priced"
    assert "US" in unknown.json()["detail"]
    long = api.post("/calculator/estimate", json={"text": "x" * 1601, "country": "US"})
    assert long.status_code == 422
    assert long.json()["code"] == "text_too_long"
    bad = api.post("/calculator/estimate", json={"text": "hi", "country": "us"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_request"
