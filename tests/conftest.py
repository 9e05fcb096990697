"""Shared fixtures: a fresh PostgreSQL database per test, and the CLI run as a real process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

PG_ADMIN_URL = os.environ.get(
    "OPTUNA_SEARCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
"""The machine's PostgreSQL (trust auth); each test gets a database of its own on it."""


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    name = f"optuna_search_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dashboard(url: str, cwd: Path, port: int) -> subprocess.Popen[bytes]:
    """``optuna-search dashboard`` on the smoke study, as a user would start it; returns once
    it answers HTTP (:func:`start_server`)."""
    command = ["dashboard", "--study", "smoke", "--storage", url, "--port", str(port)]
    return start_server([sys.executable, "-m", "search.cli", *command], cwd, port)


def start_server(command: list[str], cwd: Path, port: int) -> subprocess.Popen[bytes]:
    """An optuna-dashboard server (``command``) on ``port``; returns once it answers HTTP. Its
    output goes to ``cwd/dashboard.log`` (a pipe nobody reads could fill and stall it), shown
    if it exits early."""
    env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    log_path = cwd / "dashboard.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(log_path.read_text())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=30):
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("the dashboard did not answer within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, and kill what does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``optuna-search ARGS`` as a separate process, as a user would run it."""
    full_env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "search.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class PrivateServer:
    """A PostgreSQL server of the test's own (initdb into a temporary folder, a free port),
    so that a test can restart it without touching the machine's shared server."""

    def __init__(self) -> None:
        import pwd
        import shutil
        import tempfile

        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bindir:
            pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = bindir[-1]
        self.folder = Path(tempfile.mkdtemp(prefix="optuna-search-pg-", dir="/tmp"))
        self.port = free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self._shutil = shutil
        self._run(
            "initdb",
            "-D",
            str(self.folder / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "study")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/study"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            cwd="/tmp",
        )

    def _ctl(self, *args: str) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.folder / "data"),
            "-l",
            str(self.folder / "log"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
            "-w",
            *args,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """Stop (terminating every connection) and start again."""
        self._ctl("restart", "-m", "fast")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop", "-m", "immediate")
        self._shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivateServer]:
    server = PrivateServer()
    try:
        yield server
    finally:
        server.close()
