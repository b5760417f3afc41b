"""The web pages: the public Segment Calculator and the account's Usage page.

Server-rendered HTML (Jinja2) with a little JavaScript that calls the JSON API; every asset is
served by the app itself (no CDN).
"""

from talktime.web.pages import install

__all__ = ["install"]
