"""The pages' assets carry a cache policy, and odd query strings never break a page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from talktime.api import create_app
from talktime.config import Settings


@pytest.fixture
def web(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("asset", ["app.css", "calculator.js", "usage.js"])
def test_an_asset_is_revalidated_by_etag_not_cached_by_heuristic(
    web: TestClient, asset: str
) -> None:
    # no Cache-Control let browsers keep a script for a tenth of its age since Last-Modified:
    # after an upgrade the page could run the old script against the new API for days
    first = web.get(f"/static/{asset}")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-cache"
    again = web.get(f"/static/{asset}", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "query", ["x=%ff%fe", "a[]=1&&&=", "lang=%E2%80%AE", "q=" + "a" * 4000, "%%%"]
)
@pytest.mark.parametrize("page", ["/calculator", "/usage"])
def test_a_page_with_an_odd_query_string_still_loads(
    web: TestClient, page: str, query: str
) -> None:
    response = web.get(f"{page}?{query}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
