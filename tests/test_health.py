"""GET /healthz and the OpenAPI docs, in-process and through a real `talktime serve`."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient

import talktime
from talktime.api import create_app
from talktime.config import Settings
from talktime.store import head_revision

from live import serve


def test_healthz_reports_backend_version_and_revision(db_url: str, engine: sa.Engine) -> None:
    client = TestClient(create_app(Settings(database_url=db_url)))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == talktime.__version__
    assert body["database"]["backend"] == engine.dialect.name
    assert body["database"]["revision"] == head_revision()


def test_healthz_is_degraded_before_migrations(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'new.db'}")))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"]["revision"] is None


def test_openapi_docs_are_served(tmp_path: Path) -> None:
    client = TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")))
    assert client.get("/docs").status_code == 200
    assert "/healthz" in client.get("/openapi.json").json()["paths"]


def test_talktime_serve_answers_healthz_over_http(db_url: str) -> None:
    with serve(db_url) as server:
        body = httpx.get(f"{server.base_url}/healthz").json()
    assert body["status"] == "ok"
    assert body["database"]["revision"] == head_revision()
