"""The web pages: the public Segment Calculator and the account's Usage page.

Server-rendered HTML (Jinja2) with a little JavaScript that calls the JSON API; every asset is
served by the app itself (no CDN). `install(app)` adds them to the API app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Serve the pages and their assets from ``app`` (see `talktime.web.pages`)."""
    # Imported here: the pages use the API's auth, and the API app calls this while it builds.
    from talktime.web.pages import install as install_pages

    install_pages(app)


__all__ = ["install"]
