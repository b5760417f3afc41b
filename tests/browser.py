"""Headless Chromium for page tests: Debian's `chromium` package driven by Playwright.

Installs `chromium` with apt-get when it is missing (as root), like tests/pgserver.py does for
PostgreSQL. Playwright never downloads a browser of its own: `executable_path` points at Debian's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuplock import setup_lock

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


class ChromiumUnavailableError(RuntimeError):
    """Chromium could not be found or installed; the message says why."""


def ensure_chromium() -> Path:
    """The path of Debian's Chromium, installing the package first when it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    with setup_lock():  # parallel test workers: one installs, the others wait and find it
        return _install()


def _install() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ChromiumUnavailableError(
            "Chromium is missing and cannot be installed here: run `sudo apt-get install chromium`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ChromiumUnavailableError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")
    if not CHROMIUM.exists():
        raise ChromiumUnavailableError("installed chromium but /usr/bin/chromium is missing")
    return CHROMIUM
