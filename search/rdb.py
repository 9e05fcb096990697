"""Writing to Optuna's tables: a buffered RDB storage, and attrs on finished trials.

:class:`BufferedRDBStorage` holds a trial's parameter and attr writes until the next other
storage call, which first commits them in one transaction (SQLAlchemy Core on Optuna's
tables, ``self.engine.begin()``); every storage call retries through a lost connection
(``search.retry``). Which of Optuna's methods is which is listed explicitly, not derived from
``dir()``: ``_BUFFERED`` (held for the flush), ``_RETRIED`` (flush first, then Optuna's
method, retried as a whole), ``_AS_IS`` (neither). ``tests/test_rdb.py`` fails
when Optuna adds a public storage method, or ``_CachedStorage`` calls a private backend
method, that the lists do not classify.

Optuna's private names this relies on, each for a measured benefit (BENCHMARKS.md, "What one
rejected configuration costs": ~35 transactions per trial down to one) and each pinned by a
test: ``_set_trial_param`` (overridden: ``_CachedStorage``, which ``create_study`` wraps
around an RDBStorage, writes every ``suggest_*`` through it), and ``_create_new_trial``,
``_get_trials``, ``_get_best_trial_id``, ``_get_stale_trial_ids`` (``_CachedStorage`` calls
them directly: flushed first so that its reads see the buffered writes). The flush's tables
and columns are Optuna's versioned schema (``trials.state`` stores the ``TrialState`` name).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import optuna
import sqlalchemy

from search.retry import retrying, transient

_log = logging.getLogger("optuna_search.storage")


class BufferedRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage, writing a trial's parameters and attrs in one transaction.

    Optuna commits every ``suggest_*`` and every ``set_user_attr`` on its own, which for a
    25-parameter architecture is ~35 transactions per trial: most of what a rejected trial
    costs. Here those writes wait in a buffer, and any other storage call (a read, a state
    change, a report, a heartbeat) first commits the buffer in one transaction. Readers
    therefore always see every earlier write, in this process and, after the next storage
    call, in every other process.

    Which of Optuna's methods are buffered, flushed first and retried, or left as they are is
    listed explicitly: :data:`_BUFFERED`, :data:`_RETRIED`, :data:`_AS_IS`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._pending_lock = threading.Lock()
        self._retry = False  # opening fails fast: a wrong URL is an error, not an outage
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            _serialise_sqlite_transactions(self.engine)
        self._retry = True

    # Private: Optuna's _CachedStorage (create_study's wrapper) calls it for every suggest_*;
    # buffering it is ~25 of a trial's ~35 transactions (BENCHMARKS.md, section 2: 45 ms).
    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: optuna.distributions.BaseDistribution,
        previous_distribution: optuna.distributions.BaseDistribution | None,
    ) -> None:
        args = (trial_id, param_name, param_value_internal, distribution, previous_distribution)
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
                try:
                    self._write(pending)
                except _TrialFinished as finished:
                    # Rolled back; Optuna's own check (it reads the trial) raises its error.
                    self.check_trial_is_updatable(finished.trial_id, finished.state)
                    raise
            except Exception as e:
                if transient(e):  # a lost connection loses nothing: the retry writes it
                    self._pending = pending + self._pending
                raise

    def _write(self, pending: list[tuple[str, tuple[Any, ...]]]) -> None:
        """One transaction, with the error handling of Optuna's own writes: a unique key
        another process wrote first is ignored, other database errors are Optuna's
        ``StorageInternalError``."""
        try:
            with self.engine.begin() as conn:
                for trial_id in dict.fromkeys(args[0] for _, args in pending):
                    ops = [(kind, args) for kind, args in pending if args[0] == trial_id]
                    _write_trial(conn, trial_id, ops)
        except sqlalchemy.exc.IntegrityError as e:
            _log.debug("ignoring %r: another process wrote the same key first", e)
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise optuna.exceptions.StorageInternalError(
                "An exception is raised during the commit of buffered trial writes."
            ) from e


class _TrialFinished(optuna.exceptions.UpdateFinishedTrialError):
    """Raised inside the flush's transaction (rolling it back) for a finished trial."""

    def __init__(self, trial_id: int, state: optuna.trial.TrialState) -> None:
        super().__init__(f"trial id {trial_id} is {state.name} and can not be updated")
        self.trial_id = trial_id
        self.state = state


# Optuna's tables (its versioned schema), the columns the flush uses, for SQLAlchemy Core.
_TRIALS = sqlalchemy.table(
    "trials",
    sqlalchemy.column("trial_id"),
    sqlalchemy.column("study_id"),
    sqlalchemy.column("state"),  # an Enum column: the TrialState's name, e.g. 'RUNNING'
)
_TRIAL_PARAMS = sqlalchemy.table(
    "trial_params",
    sqlalchemy.column("trial_id"),
    sqlalchemy.column("param_name"),
    sqlalchemy.column("param_value"),
    sqlalchemy.column("distribution_json"),
)
_TRIAL_ATTRS = {
    kind: sqlalchemy.table(
        name,
        sqlalchemy.column("trial_id"),
        sqlalchemy.column("key"),
        sqlalchemy.column("value_json"),
    )
    for kind, name in (("user", "trial_user_attributes"), ("system", "trial_system_attributes"))
}


def _write_trial(
    conn: sqlalchemy.engine.Connection, trial_id: int, ops: list[tuple[str, tuple[Any, ...]]]
) -> None:
    """One trial's buffered writes, checked as Optuna checks them one by one."""
    row = conn.execute(
        sqlalchemy.select(_TRIALS.c.study_id, _TRIALS.c.state).where(_TRIALS.c.trial_id == trial_id)
    ).first()
    if row is None:
        raise KeyError("Record does not exist.")  # Optuna's error for an unknown trial
    study_id, state = row[0], optuna.trial.TrialState[row[1]]
    if state.is_finished():
        raise _TrialFinished(trial_id, state)
    params = [args for kind, args in ops if kind == "param"]
    unchecked = {name: dist for _, name, _, dist, previous in params if previous is None}
    if unchecked:
        earlier = conn.execute(
            sqlalchemy.select(_TRIAL_PARAMS.c.param_name, _TRIAL_PARAMS.c.distribution_json)
            .select_from(
                _TRIAL_PARAMS.join(_TRIALS, _TRIAL_PARAMS.c.trial_id == _TRIALS.c.trial_id)
            )
            .where(_TRIALS.c.study_id == study_id, _TRIAL_PARAMS.c.param_name.in_(list(unchecked)))
        )
        for name, dist_json in earlier:
            optuna.distributions.check_distribution_compatibility(
                optuna.distributions.json_to_distribution(dist_json), unchecked[name]
            )
    for *_, dist, previous in params:
        if previous is not None:
            optuna.distributions.check_distribution_compatibility(previous, dist)
    if params:
        conn.execute(
            _TRIAL_PARAMS.insert(),
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
    for kind, table in _TRIAL_ATTRS.items():
        latest = {args[1]: args[2] for k, args in ops if k == kind}
        if not latest:
            continue
        conn.execute(
            table.delete().where(table.c.trial_id == trial_id, table.c.key.in_(list(latest)))
        )
        conn.execute(
            table.insert(),
            [
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                for key, value in latest.items()
            ],
        )


# Every callable of Optuna's RDBStorage, classified; tests/test_rdb.py fails
# when an Optuna release adds one (or _CachedStorage calls a private one) not listed here.

_RETRIED: tuple[str, ...] = (
    # Touch the database: flush the buffer first, then run Optuna's method; the two are
    # retried as a whole through a lost connection (see `retrying`).
    "check_trial_is_updatable",  # reads the trial when it has finished (for the error)
    "create_new_study",
    "create_new_trial",
    "delete_study",
    "get_all_studies",
    "get_all_trials",
    "get_all_versions",
    "get_best_trial",
    "get_current_version",
    "get_head_version",
    "get_n_trials",
    "get_study_directions",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_system_attrs",
    "get_study_user_attrs",
    "get_trial",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial_param",
    "get_trial_params",
    "get_trial_system_attrs",
    "get_trial_user_attrs",
    "record_heartbeat",
    "set_study_system_attr",
    "set_study_user_attr",
    "set_trial_intermediate_value",
    "set_trial_state_values",
    "upgrade",
    # Private, called directly by Optuna's _CachedStorage (create_study wraps every
    # RDBStorage in it): flushed first, else its reads (ask, tell, the sampler's history,
    # heartbeats) would miss this process's buffered writes, and retried like the rest. Each
    # is here only for the buffer's benefit (BENCHMARKS.md section 2: ~35 commits -> 1):
    "_create_new_trial",  # ask: the trial's row, after the previous trial's writes
    "_get_best_trial_id",  # study.best_trial must count the buffered trial's writes
    "_get_stale_trial_ids",  # heartbeat: a stale trial's params must be there to re-queue it
    "_get_trials",  # every trial read (sampler history, tell) must see the buffered writes
)
_BUFFERED: tuple[str, ...] = (
    # Overridden above: appended to the buffer, written by the next flush.
    "set_trial_user_attr",
    "set_trial_system_attr",
    "_set_trial_param",
    # Not overridden: Optuna's own calls self._set_trial_param, so it is buffered too.
    "set_trial_param",
)
_AS_IS: tuple[str, ...] = (
    # Optuna's own: they neither touch the database nor need the buffer flushed.
    "get_failed_trial_callback",
    "get_heartbeat_interval",
    "get_heartbeat_stale_trial_callback",
    "remove_session",
)


def _flushing(name: str) -> Callable[..., Any]:
    """Optuna's method ``name``, run after a flush of the buffer and retried with it."""
    try:
        method = getattr(optuna.storages.RDBStorage, name)
    except AttributeError:
        raise ImportError(
            f"optuna {optuna.__version__}: RDBStorage.{name} is gone; reclassify it in "
            "_RETRIED of search/rdb.py"
        ) from None

    def attempt(self: BufferedRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if self._pending:
            self._flush()  # retried with the call, as a whole
        return method(self, *args, **kwargs)

    def flush_first(self: BufferedRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if not self._retry:
            return attempt(self, *args, **kwargs)
        return retrying(attempt, self, *args, what=name, **kwargs)

    flush_first.__name__ = name
    flush_first.__qualname__ = f"BufferedRDBStorage.{name}"
    flush_first.__doc__ = method.__doc__
    flush_first.__wrapped__ = method  # type: ignore[attr-defined]
    return flush_first


for _name in _RETRIED:
    setattr(BufferedRDBStorage, _name, _flushing(_name))
del _name


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


def set_finished_trial_attrs(
    storage: optuna.storages.RDBStorage, trial_id: int, attrs: Mapping[str, Any]
) -> None:
    """Set user attrs on a trial that already finished (Optuna's API refuses that).

    Used to record a retrain's result on the trial it retrained. It is the same upsert
    Optuna runs on its own table, without the "trial is still running" check.
    """
    for key, value in attrs.items():
        retrying(_upsert_user_attr, storage, trial_id, key, json.dumps(value), what="record")


def _upsert_user_attr(
    storage: optuna.storages.RDBStorage, trial_id: int, key: str, payload: str
) -> None:
    table = _TRIAL_ATTRS["user"]
    with storage.engine.begin() as conn:
        updated = conn.execute(
            table.update()
            .where(table.c.trial_id == trial_id, table.c.key == key)
            .values(value_json=payload)
        ).rowcount
        if not updated:
            conn.execute(table.insert().values(trial_id=trial_id, key=key, value_json=payload))
