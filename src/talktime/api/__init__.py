"""HTTP API: thin FastAPI routes over `talktime.service`."""

from talktime.api.app import create_app

__all__ = ["create_app"]
