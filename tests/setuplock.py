"""One machine-wide lock for installing what the tests need (apt-get, useradd).

pytest-xdist starts its workers together, and each may find PostgreSQL or Chromium missing on a
fresh machine; apt-get refuses to run while another apt-get holds dpkg's lock. Whoever takes this
lock first installs; the others wait, then find the package installed.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_PATH = Path(tempfile.gettempdir()) / "talktime-test-setup.lock"


@contextmanager
def setup_lock() -> Iterator[None]:
    """Hold the machine-wide setup lock (an exclusive `flock`) for the block."""
    with LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
