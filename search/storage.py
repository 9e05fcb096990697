"""Where studies live: SQLite by default, PostgreSQL (or another SQLAlchemy URL) for many hosts.

The URL comes from ``--storage``, else ``$OPTUNA_SEARCH_STORAGE``, else the study config's
``storage:``, else ``sqlite:///optuna-search.db`` in the working directory. A bare path is
taken as a SQLite file. Passwords never appear in output: :func:`mask` every URL you print.

Engine settings:
- SQLite: write-ahead logging (readers never block the writer), a 60 s busy timeout, so that
  several worker processes on one host share the file without "database is locked".
- PostgreSQL: psycopg 3, a small pool per process with pre-ping and recycling, so that pooled
  connections survive a database restart.

Besides Optuna's API, the service needs three small queries Optuna does not offer (run with
SQLAlchemy on Optuna's own tables): how many trials hold a training slot, whether a
configuration already finished, and user attrs on finished trials (``retrain`` results).

Example:
    >>> mask("postgresql://optuna:secret@db:5432/optuna")
    'postgresql://optuna:***@db:5432/optuna'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from sqlalchemy.engine import URL, make_url

_log = logging.getLogger("optuna_search.storage")

DEFAULT_STORAGE = "sqlite:///optuna-search.db"
STORAGE_ENV = "OPTUNA_SEARCH_STORAGE"
SQLITE_BUSY_TIMEOUT_S = 60


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
    """Connect (creating Optuna's tables if needed) with the engine settings above.

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
        _enable_wal(path)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    else:
        engine_kwargs.update(
            pool_pre_ping=True, pool_size=2, max_overflow=4, pool_recycle=300, pool_timeout=60
        )
        if parsed.get_backend_name() == "postgresql":
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        with _quiet_experimental():
            heartbeat: dict[str, Any] = {}
            if heartbeat_interval is not None:
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                heartbeat = {
                    "heartbeat_interval": heartbeat_interval,
                    "grace_period": grace_period,
                    "heartbeat_stale_trial_callback": retry,
                }
            return BufferedRDBStorage(
                parsed.render_as_string(hide_password=False),
                engine_kwargs=engine_kwargs,
                **heartbeat,
            )
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        detail = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        raise StorageError(f"cannot open storage {mask(url)!r}: {detail}") from None


class BufferedRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage, writing a trial's parameters and attrs in one transaction.

    Optuna commits every ``suggest_*`` and every ``set_user_attr`` on its own, which for a
    25-parameter architecture is ~35 transactions per trial: most of what a rejected trial
    costs. Here those writes wait in a buffer, and any other storage call (a read, a state
    change, a report, a heartbeat) first commits the buffer in one transaction. Readers
    therefore always see every earlier write, in this process and, after the next storage
    call, in every other process.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._pending_lock = threading.Lock()
        self._retry = False  # opening fails fast: a wrong URL is an error, not an outage
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            _serialise_sqlite_transactions(self.engine)
        self._retry = True

    def _set_trial_param(self, *args: Any) -> None:
        with self._pending_lock:
            self._pending.append(("param", args))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._pending_lock:
            self._pending.append(("user", (trial_id, key, value)))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._pending_lock:
            self._pending.append(("system", (trial_id, key, value)))

    def flush(self) -> None:
        """Commit the buffered writes in one transaction, with bulk inserts.

        The same checks as Optuna's own writes: the trial must still be running, and a
        parameter's distribution must be compatible with the study's earlier ones. Like every
        other storage call, it retries through a lost connection (a database restart).
        """
        if self._retry:
            retrying(self._flush, what="flush")
        else:
            self._flush()

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            try:
                with _create_scoped_session(self.scoped_session, True) as session:
                    for trial_id in dict.fromkeys(args[0] for _, args in pending):
                        ops = [(kind, args) for kind, args in pending if args[0] == trial_id]
                        self._flush_trial(session, trial_id, ops)
            except Exception as e:
                if _transient(e):  # a lost connection loses nothing: the retry writes it
                    self._pending = pending + self._pending
                raise

    def _flush_trial(self, session: Any, trial_id: int, ops: list[tuple[str, tuple]]) -> None:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        self.check_trial_is_updatable(trial_id, trial.state)
        params = [args for kind, args in ops if kind == "param"]
        unchecked = {name: dist for _, name, _, dist, previous in params if previous is None}
        if unchecked:
            rows = (
                session.query(
                    models.TrialParamModel.param_name, models.TrialParamModel.distribution_json
                )
                .join(models.TrialModel)
                .filter(models.TrialModel.study_id == trial.study_id)
                .filter(models.TrialParamModel.param_name.in_(list(unchecked)))
                .all()
            )
            for name, dist_json in rows:
                optuna.distributions.check_distribution_compatibility(
                    optuna.distributions.json_to_distribution(dist_json), unchecked[name]
                )
        for *_, dist, previous in params:
            if previous is not None:
                optuna.distributions.check_distribution_compatibility(previous, dist)
        if params:
            session.execute(
                sqlalchemy.insert(models.TrialParamModel),
                [
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": value,
                        "distribution_json": optuna.distributions.distribution_to_json(dist),
                    }
                    for _, name, value, dist, _ in params
                ],
            )
        for kind, model in (
            ("user", models.TrialUserAttributeModel),
            ("system", models.TrialSystemAttributeModel),
        ):
            latest = {args[1]: args[2] for k, args in ops if k == kind}
            if not latest:
                continue
            session.execute(
                sqlalchemy.delete(model).where(
                    model.trial_id == trial_id, model.key.in_(list(latest))
                )
            )
            session.execute(
                sqlalchemy.insert(model),
                [
                    {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                    for key, value in latest.items()
                ],
            )


RETRY_SECONDS = 180.0
"""How long a storage call keeps retrying through a lost connection (a database restart,
a network blip) or a locked SQLite file before it gives up."""


def _transient(error: BaseException) -> bool:
    """A lost or refused connection, or a busy SQLite file: worth retrying."""
    while error is not None:
        if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if type(error).__module__.startswith("psycopg") and type(error).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


def retrying(call: Any, *args: Any, what: str = "storage call", **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, retried with backoff for up to :data:`RETRY_SECONDS` while
    the error is transient; other errors are raised at once."""
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.2
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as e:
            if not _transient(e) or time.monotonic() + delay > deadline:
                raise
            _log.warning(
                "%s failed (%s); retrying in %.1f s",
                what,
                str(e).strip().splitlines()[0][:160],
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _flushing(name: str) -> Any:
    method = getattr(optuna.storages.RDBStorage, name)

    def attempt(self: BufferedRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if self._pending:
            self._flush()  # retried with the call, as a whole
        return method(self, *args, **kwargs)

    def flush_first(self: BufferedRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if not self._retry:
            return attempt(self, *args, **kwargs)
        return retrying(attempt, self, *args, what=name, **kwargs)

    flush_first.__name__ = name
    flush_first.__doc__ = method.__doc__
    return flush_first


_UNBUFFERED = {
    "set_trial_param",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_heartbeat_interval",
    "get_failed_trial_callback",
    "remove_session",
    "get_heartbeat_stale_trial_callback",
}
_PRIVATE_READS = {"_get_trials", "_get_stale_trial_ids", "_get_best_trial_id", "_create_new_trial"}
for _name in dir(optuna.storages.RDBStorage):
    _public = not _name.startswith("_") and _name not in _UNBUFFERED
    if (_public or _name in _PRIVATE_READS) and callable(
        getattr(optuna.storages.RDBStorage, _name)
    ):
        setattr(BufferedRDBStorage, _name, _flushing(_name))


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _serialise_sqlite_transactions(engine: sqlalchemy.engine.Engine) -> None:
    """Begin every SQLite transaction with BEGIN IMMEDIATE (the write lock, at once).

    Optuna's state changes read then write (a WAITING trial becomes RUNNING; a stale RUNNING
    trial becomes FAIL), relying on SELECT ... FOR UPDATE, which SQLite ignores; and Python's
    sqlite3 runs the read outside any transaction. Two workers could then both take the same
    enqueued trial. Taking the write lock at the start makes each transaction atomic; WAL and
    the busy timeout keep the waits short.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made while opening lack the hook


def _enable_wal(path: Path) -> None:
    # WAL is a property of the database file: set it once, before Optuna's engine connects.
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


# --- training slots ---------------------------------------------------------------------------
# A study's trial count counts trials that trained. A worker claims a slot for a feasible trial
# (user attr counted=true) under a lock, after counting the other slot holders; a trial that
# ends without training (diverged, out of memory, interrupted) gives its slot back, and a trial
# that FAILs (its worker died) no longer holds one.

_COUNT_SLOTS = (
    "SELECT COUNT(*) FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
    "WHERE t.study_id = :study_id AND t.trial_id != :trial_id AND a.key = 'counted' "
    "AND a.value_json = 'true' AND t.state IN ({states})"
)
_SLOT_STATES = ("RUNNING", "COMPLETE", "PRUNED")

_FIND_BY_ATTR = sqlalchemy.text(
    "SELECT t.trial_id FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
    "WHERE t.study_id = :study_id AND a.key = :key AND a.value_json = :value "
    "AND t.state = :state ORDER BY t.number LIMIT 1"
)


def count_slots(
    storage: optuna.storages.RDBStorage,
    study_id: int,
    *,
    exclude: int = -1,
    states: tuple[str, ...] = _SLOT_STATES,
) -> int:
    """Trials that hold a training slot (by default: running, completed, or pruned after
    training began), leaving out trial id ``exclude``."""
    assert all(s in _SLOT_STATES for s in states)
    query = sqlalchemy.text(_COUNT_SLOTS.format(states=", ".join(f"'{s}'" for s in states)))
    return int(retrying(_scalar, storage, query, {"study_id": study_id, "trial_id": exclude}))


def _scalar(storage: optuna.storages.RDBStorage, query: Any, params: dict[str, Any]) -> Any:
    with storage.engine.connect() as conn:
        row = conn.execute(query, params).first()
    return None if row is None else row[0]


def count_waiting(storage: optuna.storages.RDBStorage, study_id: int) -> int:
    """Enqueued (or re-queued) trials no worker has taken yet."""
    query = sqlalchemy.text(
        "SELECT COUNT(*) FROM trials WHERE study_id = :study_id AND state = 'WAITING'"
    )
    return int(retrying(_scalar, storage, query, {"study_id": study_id}))


def find_trial_by_attr(
    storage: optuna.storages.RDBStorage, study_id: int, key: str, value: Any, state: str
) -> int | None:
    """The id of the first trial in ``state`` whose user attr ``key`` equals ``value``."""
    params = {"study_id": study_id, "key": key, "value": json.dumps(value), "state": state}
    found = retrying(_scalar, storage, _FIND_BY_ATTR, params)
    return None if found is None else int(found)


@contextlib.contextmanager
def slot_lock(storage: optuna.storages.RDBStorage, study_name: str) -> Iterator[None]:
    """Serialise slot claims of one study across processes and hosts.

    PostgreSQL: a session advisory lock (released by the server if the holder dies); MySQL:
    GET_LOCK; SQLite: a lock file beside the database (one host by nature).
    """
    backend = storage.engine.dialect.name
    key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
    if backend == "sqlite":
        from filelock import FileLock

        with FileLock(f"{storage.engine.url.database}.{key & 0xFFFFFFFF:08x}.lock"):
            yield
        return
    if backend == "postgresql":
        lock = sqlalchemy.text("SELECT pg_advisory_lock(:n)")
        unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:n)")
        name: Any = key
    else:
        lock = sqlalchemy.text("SELECT GET_LOCK(:n, 600)")
        unlock = sqlalchemy.text("SELECT RELEASE_LOCK(:n)")
        name = f"optuna-search-{key & 0xFFFFFFFF:08x}"
    conn = retrying(_locked_connection, storage, lock, name, what="slot lock")
    try:
        yield
    finally:
        try:
            conn.execute(unlock, {"n": name})
        except Exception:
            # The connection died: the server released the lock with it. Never return a
            # connection that may still hold the lock to the pool.
            conn.invalidate()
        # The lock is released. Closing rolls back, which fails if the connection died just
        # now (a restart); the pool then discards the connection, and nothing is lost.
        with contextlib.suppress(sqlalchemy.exc.DBAPIError):
            conn.close()


def _locked_connection(storage: optuna.storages.RDBStorage, lock: Any, name: Any) -> Any:
    conn = storage.engine.connect()
    try:
        conn.execute(lock, {"n": name})
    except BaseException:
        conn.invalidate()
        raise
    return conn


def set_finished_trial_user_attr(
    storage: optuna.storages.RDBStorage, trial_id: int, key: str, value: Any
) -> None:
    """Set a user attr on a trial that already finished (Optuna's API refuses that).

    Used to record a retrain's result on the trial it retrained. It is the same upsert
    Optuna runs on its own table, without the "trial is still running" check.
    """
    retrying(_upsert_user_attr, storage, trial_id, key, json.dumps(value), what="retrain record")


def _upsert_user_attr(
    storage: optuna.storages.RDBStorage, trial_id: int, key: str, payload: str
) -> None:
    table = sqlalchemy.table(
        "trial_user_attributes",
        sqlalchemy.column("trial_id"),
        sqlalchemy.column("key"),
        sqlalchemy.column("value_json"),
    )
    with storage.engine.begin() as conn:
        updated = conn.execute(
            table.update()
            .where(table.c.trial_id == trial_id, table.c.key == key)
            .values(value_json=payload)
        ).rowcount
        if not updated:
            conn.execute(table.insert().values(trial_id=trial_id, key=key, value_json=payload))
