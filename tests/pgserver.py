"""A throwaway PostgreSQL server for tests and benchmarks.

Installs Debian's `postgresql` when no server binaries are found (as root, with apt-get), runs
`initdb` into a temporary directory as a non-root OS user, starts `postgres` on a free loopback
port, and removes everything on `stop()`. Used by tests/conftest.py and bench/*.py.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from setuplock import setup_lock


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL could not be installed or started; the message says why."""


def _find_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _install() -> None:
    if os.geteuid() != 0:
        raise PostgresUnavailableError(
            "PostgreSQL server binaries are missing and this is not root, so they cannot be "
            "installed: run `sudo apt-get install postgresql` once"
        )
    if shutil.which("apt-get") is None:
        raise PostgresUnavailableError(
            "PostgreSQL is missing and there is no apt-get to install it"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresUnavailableError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _demote(user: str | None) -> tuple[Callable[[], None] | None, int | None, int | None]:
    if user is None:
        return None, None, None
    entry = pwd.getpwnam(user)

    def become() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return become, entry.pw_uid, entry.pw_gid


@dataclass
class PostgresServer:
    """A running throwaway cluster; `url(db)` gives a SQLAlchemy URL for one of its databases."""

    bindir: Path
    datadir: Path
    port: int
    os_user: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        become, _, _ = _demote(self.os_user)
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            preexec_fn=become,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "immediate", "-w")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _prepare(install: bool) -> tuple[Path, str | None]:
    """The server binaries' directory (installing them if allowed) and the OS user to run as."""
    bindir = _find_bindir()
    if bindir is None:
        if not install:
            raise PostgresUnavailableError(
                "PostgreSQL server binaries (initdb, postgres) not found"
            )
        _install()
        bindir = _find_bindir()
        if bindir is None:
            raise PostgresUnavailableError(
                "installed postgresql but found no initdb under /usr/lib"
            )
    os_user = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        os_user = "postgres"
        try:
            pwd.getpwnam(os_user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", os_user],
                check=False,
                capture_output=True,
            )
    return bindir, os_user


def start(install: bool = True, fsync: bool = True) -> PostgresServer:
    """Install if needed, initdb and start a cluster on a free port, or raise the reason."""
    with setup_lock():  # parallel test workers: one installs, the others wait and find it
        bindir, os_user = _prepare(install)
    top = Path(tempfile.mkdtemp(prefix="talktime-pg-"))
    datadir = top / "data"
    sockdir = top / "sock"
    sockdir.mkdir()
    _, uid, gid = _demote(os_user)
    if uid is not None and gid is not None:
        os.chown(top, uid, gid)
        os.chown(sockdir, uid, gid)
    server = PostgresServer(bindir=bindir, datadir=datadir, port=_free_port(), os_user=os_user)
    done = server._run(
        "initdb", "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
        "--locale=C.UTF-8", "--no-instructions",
    )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        raise PostgresUnavailableError(f"initdb failed:\n{done.stderr[-2000:]}")
    for attempt in range(3):
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={server.port} "
            f"-c unix_socket_directories={sockdir} -c max_connections=200 "
            f"-c fsync={'on' if fsync else 'off'} -c synchronous_commit=on -c shared_buffers=128MB"
        )
        done = server._run(
            "pg_ctl", "start", "-D", str(datadir), "-w", "-t", "60", "-o", options,
            "-l", str(top / "server.log"),
        )  # fmt: skip
        if done.returncode == 0:
            break
        if attempt == 2:
            log = (top / "server.log").read_text() if (top / "server.log").exists() else ""
            shutil.rmtree(top, ignore_errors=True)
            raise PostgresUnavailableError(
                f"pg_ctl start failed:\n{done.stderr[-1000:]}\n{log[-2000:]}"
            )
        server.port = _free_port()  # another process took the port: try a new one
        time.sleep(0.5)
    return server


@contextlib.contextmanager
def running(install: bool = True, fsync: bool = True) -> Iterator[PostgresServer]:
    """`with running() as server:` starts a throwaway cluster and always stops it."""
    server = start(install=install, fsync=fsync)
    try:
        yield server
    finally:
        server.stop()
