"""Where studies live: SQLite by default, PostgreSQL (or another SQLAlchemy URL) for many hosts.

The URL comes from ``--storage``, else ``$OPTUNA_SEARCH_STORAGE``, else the study config's
``storage:``, else ``sqlite:///optuna-search.db`` in the working directory. A bare path is
taken as a SQLite file. Passwords never appear in output: :func:`mask` every URL you print.

Engine settings:
- SQLite: write-ahead logging (readers never block the writer), a 60 s busy timeout, so that
  several worker processes on one host share the file without "database is locked".
- PostgreSQL: psycopg 3, pre-ping and recycling (pooled connections survive a database
  restart), and a budget of :data:`MAX_CONNECTIONS` connections per process: one kept
  between calls, a second only while two are needed at once (the slot lock and a write, or
  the heartbeat thread and the main loop). 64 workers fit a stock PostgreSQL
  (``max_connections`` 100); a connection refused for "too many clients" is waited out.

Any number of processes may open a fresh database at the same moment: creating Optuna's
tables (and a study, ``search.study``) is serialised by :func:`setup_lock`, a PostgreSQL
advisory lock or a lock file beside a SQLite database, and the races of others (the tables
or the study created by a process that does not take the lock) are retried.

Writing is ``search.rdb`` (the buffered storage), retrying ``search.retry``.

Example:
    >>> mask("postgresql://optuna:secret@db:5432/optuna")
    'postgresql://optuna:***@db:5432/optuna'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from search import slots
from search.rdb import BufferedRDBStorage, set_finished_trial_attrs
from search.retry import RETRY_SECONDS, backoff, retrying

__all__ = [
    "DEFAULT_STORAGE",
    "MAX_CONNECTIONS",
    "STORAGE_ENV",
    "BufferedRDBStorage",
    "StorageError",
    "mask",
    "open_plain_storage",
    "open_storage",
    "parse_url",
    "resolve_url",
    "retrying",
    "set_finished_trial_attrs",
    "setup_lock",
]

DEFAULT_STORAGE = "sqlite:///optuna-search.db"
STORAGE_ENV = "OPTUNA_SEARCH_STORAGE"
SQLITE_BUSY_TIMEOUT_S = 60
MAX_CONNECTIONS = 2
"""Database connections a process holds at most (PostgreSQL): one pooled, one overflow."""
SETUP_LOCK_ID = int.from_bytes(
    hashlib.sha256(b"optuna-search setup").digest()[:8], "big", signed=True
)

T = TypeVar("T")


class StorageError(Exception):
    """A storage URL that is malformed, unsupported or unreachable (password masked)."""


def resolve_url(flag: str | None, config_value: str | None = None) -> str:
    """The storage URL: the flag, else the environment, else the config, else the default."""
    url = flag or os.environ.get(STORAGE_ENV) or config_value or DEFAULT_STORAGE
    if "://" not in url:  # a bare path: a SQLite file
        url = f"sqlite:///{url}"
    return url


def mask(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable storage URL>"


def parse_url(url: str) -> URL:
    """Check the URL's syntax and driver without connecting; raises :class:`StorageError`."""
    try:
        parsed = make_url(url)
    except Exception:
        raise StorageError(
            f"invalid storage URL {mask(url)!r}: expected e.g. sqlite:///study.db or "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver this project installs
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StorageError(
                f"storage {mask(url)!r} has no file: give sqlite:///path/to/study.db "
                "(an in-memory database is gone when the process ends)"
            )
    elif backend not in ("postgresql", "mysql"):
        raise StorageError(
            f"unsupported storage {mask(url)!r}: use sqlite:///file.db or postgresql://..."
        )
    try:
        parsed.get_dialect()
    except Exception:
        raise StorageError(
            f"storage {mask(url)!r}: the database driver {parsed.drivername!r} is not "
            "installed; for PostgreSQL use postgresql:// (psycopg 3 is installed)"
        ) from None
    return parsed


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> BufferedRDBStorage:
    """Connect (creating Optuna's tables if needed, under :func:`setup_lock`) with the engine
    settings above.

    With ``heartbeat_interval``, a trial whose process dies is failed by the next worker
    that starts a trial after ``grace_period`` and re-queued with the same parameters (up
    to ``max_retry`` times).
    """
    parsed = parse_url(url)
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.parent.exists():
            raise StorageError(f"storage {mask(url)!r}: folder {path.parent} does not exist")
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        engine_kwargs.update(
            pool_pre_ping=True,
            pool_size=MAX_CONNECTIONS - 1,
            max_overflow=1,
            pool_recycle=300,
            pool_timeout=RETRY_SECONDS,
        )
        if parsed.get_backend_name() == "postgresql":
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    heartbeat: dict[str, Any] = {}
    if heartbeat_interval is not None:
        with _quiet_experimental():
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        heartbeat = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period,
            "heartbeat_stale_trial_callback": retry,
        }

    def connect() -> BufferedRDBStorage:
        if parsed.get_backend_name() == "sqlite":
            _enable_wal(Path(parsed.database or ""))
        with _quiet_experimental():
            return BufferedRDBStorage(
                parsed.render_as_string(hide_password=False),
                engine_kwargs=engine_kwargs,
                **heartbeat,
            )

    try:
        with setup_lock(parsed):
            return when_setup_races(connect)
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
        raise StorageError(f"cannot open storage {mask(url)!r}: {_first_line(e)}") from None


@contextlib.contextmanager
def setup_lock(url: URL) -> Iterator[None]:
    """Serialise setting a database up (Optuna's tables, a study) across processes and hosts.

    PostgreSQL: a session advisory lock on a connection of its own (released by the server
    if the holder dies); SQLite: a lock file beside the database. Other databases: none (the
    races are retried, :func:`when_setup_races`).
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        from filelock import FileLock

        with FileLock(f"{url.database}.setup.lock"):
            yield
        return
    if backend != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(
        url, poolclass=sqlalchemy.NullPool, connect_args={"connect_timeout": 10}
    )
    try:
        # Polled, not waited for: a waiting process holds no connection (see search.slots).
        lock = sqlalchemy.text("SELECT pg_try_advisory_lock(:n)")
        conn = slots.acquire(lambda: when_busy(engine.connect), lock, SETUP_LOCK_ID)
        try:
            yield
        finally:
            with contextlib.suppress(sqlalchemy.exc.DBAPIError):
                conn.close()  # closing the session releases its advisory lock
    finally:
        engine.dispose()


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and its causes (Optuna wraps SQLAlchemy's, which wraps the driver's)."""
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def too_many_clients(error: BaseException) -> bool:
    """PostgreSQL at its connection limit (or still starting): worth waiting for."""
    phrases = (
        "too many clients",
        "remaining connection slots are reserved",
        "the database system is starting up",
    )
    return any(p in str(e).lower() for e in _chain(error) for p in phrases)


def setup_race(error: BaseException) -> bool:
    """Another process created the same tables, version row or study at the same moment."""
    phrases = ("already exists", "duplicate key", "unique constraint")
    return any(
        isinstance(e, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.ProgrammingError)
        and any(p in str(e).lower() for p in phrases)
        for e in _chain(error)
    )


def when_busy(call: Callable[[], T]) -> T:
    """``call()``, waiting out a database at its connection limit (with backoff)."""
    return backoff(call, worth_retrying=too_many_clients, what="connecting")


def when_setup_races(call: Callable[[], T]) -> T:
    """``call()``, retried through the races of a first setup and a busy database."""
    return backoff(
        call,
        worth_retrying=lambda e: too_many_clients(e) or setup_race(e),
        what="setting the database up",
    )


def _first_line(error: BaseException) -> str:
    cause = error.__cause__ if error.__cause__ is not None else error
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def open_plain_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's own RDBStorage on ``url``, unbuffered (for optuna-dashboard, whose writes,
    notes and attrs, must be immediate); the same URL checks and errors as
    :func:`open_storage`."""
    parsed = parse_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    try:
        return optuna.storages.RDBStorage(
            parsed.render_as_string(hide_password=False),
            engine_kwargs={} if sqlite else {"pool_pre_ping": True},
        )
    except Exception as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open storage {mask(url)!r}: {detail}") from None


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _enable_wal(path: Path) -> None:
    # WAL is a property of the database file: set it once, before Optuna's engine connects.
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
