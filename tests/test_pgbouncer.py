"""Beyond what one PostgreSQL takes: a fleet through PgBouncer in transaction mode.

A private PgBouncer (Debian's package) in front of the machine's PostgreSQL, with a server
pool far smaller than the fleet: the workers' slot locks (session advisory locks held inside
one transaction), setup lock and buffered writes must all work through it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import free_port
from tests.test_fleet import FLEET_CONFIG, _assert_clean_finish, _config, _start, _trials

SERVER_POOL = 4
"""Server connections PgBouncer may open: far fewer than the workers' client connections."""


@pytest.fixture
def bouncer_url(pg_url: str) -> Iterator[str]:
    """The test database, reached through a PgBouncer of its own (transaction pooling)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed (.ci/run installs Debian's pgbouncer)")
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    url = sqlalchemy.engine.make_url(pg_url)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    folder.chmod(0o755)  # PgBouncer refuses to run as root: it runs as postgres, reading this
    (folder / "userlist.txt").write_text(f'"{url.username}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{url.database} = host={url.host} port={url.port} dbname={url.database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder}/userlist.txt\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_POOL}\nmax_client_conn = 500\n"
        f"logfile = {folder}/pgbouncer.log\npidfile = {folder}/pgbouncer.pid\n"
    )
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in folder.iterdir():
            os.chown(path, user.pw_uid, user.pw_gid)
        os.chown(folder, user.pw_uid, user.pw_gid)
        command = [binary, "-u", "postgres", str(folder / "pgbouncer.ini")]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    bounced = url.set(port=port).render_as_string(hide_password=False)
    engine = sqlalchemy.create_engine(bounced, poolclass=sqlalchemy.NullPool)
    deadline = time.monotonic() + 30
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
            break
        except sqlalchemy.exc.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = folder / "pgbouncer.log"
                text = log.read_text() if log.exists() else "pgbouncer did not start"
                raise AssertionError(text) from None
            time.sleep(0.2)
    try:
        yield bounced
    finally:
        engine.dispose()
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_fleet_through_pgbouncer(bouncer_url: str, tmp_path: Path) -> None:
    """16 workers started at once through 4 server connections: one study, the exact count,
    no configuration trained twice, no storage error."""
    config = _config(tmp_path, FLEET_CONFIG.replace("trials: 16", "trials: 32"))
    logs = [tmp_path / f"w{i:02d}.log" for i in range(16)]
    procs = [_start("worker", config, bouncer_url, log, "--dry-run", "1") for log in logs]
    codes = [p.wait(timeout=600) for p in procs]
    out = "".join(f"== {log.name}\n{log.read_text()}" for log in logs)
    assert codes == [0] * 16, out
    assert "Traceback" not in out and "prepared statement" not in out
    _assert_clean_finish(_trials(bouncer_url), 32)


def _advisory_locks(pg_url: str) -> int:
    """Advisory locks held in the test database, seen by PostgreSQL itself (not through
    PgBouncer, whose server sessions outlive its clients)."""
    engine = sqlalchemy.create_engine(pg_url, poolclass=sqlalchemy.NullPool)
    try:
        with engine.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            return int(conn.execute(sqlalchemy.text(query)).scalar_one())
    finally:
        engine.dispose()


def test_locks_are_released_through_pgbouncer(pg_url: str, bouncer_url: str) -> None:
    """Closing a client ends only its transaction behind PgBouncer: a lock released by
    closing stayed with the server session, and pollers that were never handed that
    connection waited for ever (a fleet hung in CI). Both locks unlock explicitly."""
    from search.slots import slot_lock
    from search.storage import open_storage, setup_lock

    with setup_lock(sqlalchemy.engine.make_url(bouncer_url)):
        assert _advisory_locks(pg_url) == 1
    assert _advisory_locks(pg_url) == 0
    storage = open_storage(bouncer_url)
    with slot_lock(storage, "a study"):
        assert _advisory_locks(pg_url) == 1
    assert _advisory_locks(pg_url) == 0
    storage.engine.dispose()
