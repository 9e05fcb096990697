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
import re
import sqlite3
import urllib.parse
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
OPTUNA_STORAGE_ENV = "OPTUNA_STORAGE"
"""Optuna's own variable (its CLI reads it): honoured after this project's."""
SQLITE_BUSY_TIMEOUT_S = 60
MAX_CONNECTIONS = 2
"""Database connections a process holds at most (PostgreSQL): one pooled, one overflow."""
SETUP_LOCK_ID = int.from_bytes(
    hashlib.sha256(b"optuna-search setup").digest()[:8], "big", signed=True
)

PG_CONNECT_ARGS: dict[str, Any] = {"connect_timeout": 10, "prepare_threshold": None}
"""psycopg 3 settings: fail fast on a host that does not answer; and no server-side prepared
statements, which a PgBouncer in transaction mode (before 1.21) cannot route: through one,
a fleet shares a few server connections (tests/test_pgbouncer.py)."""

T = TypeVar("T")


class StorageError(Exception):
    """A storage URL that is malformed, unsupported or unreachable (password masked)."""


class NoDatabase(StorageError):
    """A command that reads a study was pointed at a database that does not exist (or holds
    no Optuna tables): it creates none."""


def resolve_url(flag: str | None, config_value: str | None = None) -> str:
    """The storage URL: the flag, else the environment ($OPTUNA_SEARCH_STORAGE, then Optuna's
    $OPTUNA_STORAGE), else the config, else the default.
    A bare path is a SQLite file, taken literally (``?``, ``#`` and ``%`` are file name
    characters there, not URL syntax)."""
    return as_url(url_source(flag, config_value)[0])


def url_source(flag: str | None, config_value: str | None = None) -> tuple[str, str]:
    """(the URL or path as given, where it came from), for messages that name the source."""
    if flag is not None:
        if not flag.strip():
            raise StorageError("--storage is empty: give a URL or a SQLite file's path")
        return flag, "--storage"
    for variable in (STORAGE_ENV, OPTUNA_STORAGE_ENV):
        if os.environ.get(variable) is not None:
            value = os.environ[variable]
            if not value.strip():
                raise StorageError(f"${variable} is set but empty: unset it or give a URL")
            return value, f"${variable}"
    if config_value:
        return config_value, "the config's storage:"
    return DEFAULT_STORAGE, "the default"


def as_url(url: str) -> str:
    if "://" in url:
        return _encode_at_in_password(url)
    return "sqlite:///" + urllib.parse.quote(url, safe="/")


# A password may hold '@' (and more) unencoded; the host starts after the last '@' of the
# userinfo. Everything printed goes through mask(), which never shows a password, wherever
# in the URL it is given (userinfo, or a query parameter libpq understands).
_SECRET_PARAMS = re.compile(r"([?&](?:password|sslpassword|passfile)=)[^&#]*", re.IGNORECASE)


def _split_userinfo(url: str) -> tuple[str, str | None, str | None, str] | None:
    """(scheme://, user, password, rest) of a URL; user None without userinfo; None for a
    string without a scheme. The userinfo ends at the last '@' (over-masking, never under)."""
    scheme, sep, tail = url.partition("://")
    if not sep:
        return None
    at = tail.rfind("@")
    if at < 0:
        return scheme + sep, None, None, tail
    user, colon, password = tail[:at].partition(":")
    return scheme + sep, user, password if colon else None, tail[at + 1 :]


def _encode_at_in_password(url: str) -> str:
    """``u:pa@ss@host`` means the password ``pa@ss``: encode its '@' so that the URL parses."""
    authority = url.partition("://")[2].split("/", 1)[0]
    parts = _split_userinfo(url)
    if authority.count("@") < 2 or parts is None:
        return url
    scheme, user, password, rest = parts
    if password is None:
        return url
    return f"{scheme}{user}:{password.replace('@', '%40')}@{rest}"


def mask(url: str) -> str:
    """The URL with every password replaced by ``***`` (userinfo and query parameters)."""
    parts = _split_userinfo(url)
    if parts is None:
        return url
    scheme, user, password, rest = parts
    userinfo = "" if user is None else user + (":***" if password is not None else "") + "@"
    return _SECRET_PARAMS.sub(r"\1***", f"{scheme}{userinfo}{rest}")


def redact(text: str) -> str:
    """``text`` with the password removed from every URL in it (for text stored by an
    earlier version, shown again)."""
    return re.sub(r"[A-Za-z][\w+.-]*://\S+", lambda m: without_password(m.group(0)), text)


def without_password(url: str) -> str:
    """The URL with its password removed (what a study may store)."""
    parts = _split_userinfo(url)
    if parts is None:
        return url
    scheme, user, _, rest = parts
    rest = re.sub(r"[?&](?:password|sslpassword|passfile)=[^&#]*", "", rest, flags=re.I)
    if "?" not in rest and "&" in rest:
        rest = rest.replace("&", "?", 1)
    return f"{scheme}{'' if user is None else user + '@'}{rest}"


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
        dialect = parsed.get_dialect()
        dialect.import_dbapi()  # the driver itself: get_dialect() alone does not import it
    except Exception:
        raise StorageError(
            f"storage {mask(url)!r}: the database driver {parsed.drivername!r} is not "
            "installed; for PostgreSQL use postgresql:// (psycopg 3 is installed)"
        ) from None
    if getattr(dialect, "is_async", False):
        raise StorageError(
            f"storage {mask(url)!r}: {parsed.drivername!r} is an asyncio driver; "
            "use postgresql:// (psycopg 3)"
        )
    return parsed


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 3,
    create: bool = True,
) -> BufferedRDBStorage:
    """Connect (creating Optuna's tables if needed, under :func:`setup_lock`) with the engine
    settings above. With ``create=False`` (commands that read a study), nothing is created:
    a database that does not exist, or holds no Optuna tables, is a :class:`StorageError`.

    With ``heartbeat_interval``, a trial whose process dies is failed by the next worker
    that starts a trial after ``grace_period`` and re-queued with the same parameters (up
    to ``max_retry`` times).
    """
    parsed = parse_url(url)
    engine_kwargs = _engine_kwargs(parsed)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed, url, create=create)
    if not create:
        _check_has_studies(parsed, url)
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
        if create and parsed.get_backend_name() == "sqlite":
            _enable_wal(Path(parsed.database or ""))
        with _quiet_experimental():
            return BufferedRDBStorage(
                parsed.render_as_string(hide_password=False),
                engine_kwargs=engine_kwargs,
                skip_table_creation=not create,
                **heartbeat,
            )

    try:
        with setup_lock(parsed) if create else contextlib.nullcontext():
            return when_setup_races(connect)
    except (
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
        sqlite3.Error,
        OSError,
    ) as e:
        raise StorageError(f"cannot open storage {mask(url)!r}: {_first_line(e)}") from None


def _engine_kwargs(parsed: URL) -> dict[str, Any]:
    if parsed.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": MAX_CONNECTIONS - 1,
        "max_overflow": 1,
        "pool_recycle": 300,
        "pool_timeout": RETRY_SECONDS,
    }
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = PG_CONNECT_ARGS
    return kwargs


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_path(parsed: URL, url: str, *, create: bool) -> None:
    """A SQLite file this process can use: an existing database, or (``create``) a new file
    in an existing, writable folder; one line naming the path otherwise."""
    path = Path(parsed.database or "")
    where = f"storage {mask(url)!r}"
    if path.exists():
        if path.is_dir():
            raise StorageError(f"{where}: {path} is a folder: give a file, e.g. {path}/study.db")
        try:
            with path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as e:
            raise StorageError(f"{where}: cannot read {path} ({e.strerror})") from None
        if head and head != SQLITE_HEADER:
            raise StorageError(f"{where}: {path} is not a SQLite database: give another file name")
        return
    if not create:
        raise NoDatabase(
            f"{where}: no database file {path}: check the path (a command that reads a "
            "study never creates one)"
        )
    parent = path.parent
    if not parent.exists():
        raise StorageError(f"{where}: folder {parent} does not exist")
    if not parent.is_dir():
        raise StorageError(f"{where}: {parent} is not a folder")
    if not os.access(parent, os.W_OK) or str(path.resolve()).startswith(("/proc/", "/sys/")):
        raise StorageError(f"{where}: cannot create a database in {parent}: give a writable path")


def _sqlite_is_set_up(path: Path) -> bool:
    """Whether the SQLite file already holds Optuna's tables (read-only: creates nothing)."""
    if not path.is_file():
        return False
    try:
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"  # a name may hold ? or #
        conn = sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'version_info'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is not None


def _check_has_studies(parsed: URL, url: str) -> None:
    """The database holds Optuna's tables (a read command creates none)."""
    engine = sqlalchemy.create_engine(
        parsed,
        poolclass=sqlalchemy.NullPool,
        **({"connect_args": PG_CONNECT_ARGS} if parsed.get_backend_name() == "postgresql" else {}),
    )
    try:
        has = when_busy(lambda: sqlalchemy.inspect(engine).has_table("studies"))
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as e:
        raise StorageError(f"cannot open storage {mask(url)!r}: {_first_line(e)}") from None
    finally:
        engine.dispose()
    if not has:
        raise NoDatabase(
            f"storage {mask(url)!r} holds no Optuna study yet: check the URL, or start one "
            "with optuna-search run"
        )


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

        if _sqlite_is_set_up(Path(url.database or "")):
            yield  # nothing to create: no lock, and no lock file beside the database
            return
        with FileLock(f"{url.database}.setup.lock"):
            yield
        return
    if backend != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(
        url, poolclass=sqlalchemy.NullPool, connect_args=PG_CONNECT_ARGS
    )
    try:
        with when_busy(engine.connect) as conn:
            set_up = conn.execute(sqlalchemy.text("SELECT to_regclass('version_info')")).scalar()
        if set_up is not None:
            yield  # nothing to create (the usual case): no lock
            return
        # Polled, not waited for: a waiting process holds no connection (see search.slots).
        lock = sqlalchemy.text("SELECT pg_try_advisory_lock(:n)")
        conn = slots.acquire(lambda: when_busy(engine.connect), lock, SETUP_LOCK_ID)
        try:
            yield
        finally:
            # Unlocked explicitly, in the transaction that took it: behind PgBouncer in
            # transaction mode, closing ends only the transaction, and the server session
            # would keep the lock for whoever is handed that connection next.
            with contextlib.suppress(sqlalchemy.exc.DBAPIError):
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:n)"), {"n": SETUP_LOCK_ID})
            with contextlib.suppress(sqlalchemy.exc.DBAPIError):
                conn.close()
    finally:
        engine.dispose()


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and its causes (Optuna wraps SQLAlchemy's, which wraps the driver's)."""
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def study_exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    """Whether ``storage`` holds a study named ``name`` (reads only)."""
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def too_many_clients(error: BaseException) -> bool:
    """PostgreSQL at its connection limit (or still starting): worth waiting for."""
    phrases = (
        "too many clients",
        "remaining connection slots are reserved",
        "the database system is starting up",
        # PgBouncer: no server connection came free in time, or its client limit is reached.
        "query_wait_timeout",
        "no more connections allowed",
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
    """Optuna's own RDBStorage on an existing study database, unbuffered (for
    optuna-dashboard, whose writes, notes and attrs, must be immediate); the same checks
    and errors as :func:`open_storage` with ``create=False``: nothing is created."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed, url, create=False)
    _check_has_studies(parsed, url)
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        engine_kwargs = {"pool_pre_ping": True, "connect_args": PG_CONNECT_ARGS}
    try:
        return optuna.storages.RDBStorage(
            parsed.render_as_string(hide_password=False),
            engine_kwargs=engine_kwargs,
            skip_table_creation=True,
        )
    except Exception as e:
        raise StorageError(f"cannot open storage {mask(url)!r}: {_first_line(e)}") from None


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
