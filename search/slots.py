"""Training slots and configurations: how workers share a study's trial count.

A study's trial count counts trials that trained. A worker claims a slot for a feasible trial
(the record's ``counted`` is true) under a lock, after counting the other slot holders; a
trial that ends without training (diverged, out of memory, interrupted) gives its slot back,
and a trial that FAILs (its worker died) no longer holds one. A configuration is identified
by :func:`config_key`: one that already completed is reused, one training elsewhere is not
started twice.

These are the queries Optuna does not offer, run with SQLAlchemy on Optuna's own tables (its
schema is versioned, and ``tests/test_slots.py`` checks the columns used here).

Example:
    >>> config_key({"blocks": [1]}, {"lr": 0.1, "seed": 1}) == config_key(
    ...     {"blocks": [1]}, {"lr": 0.1, "seed": 2})
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy

from model.recipe import RESUME_FREE
from search.record import IDENTITY_ATTR, SLOT_ATTR
from search.retry import retrying

NOT_IDENTITY = RESUME_FREE | {"seed"}
"""Recipe fields that are no part of a configuration's identity: those that do not change
the result, and the seed, which is derived from the identity (same configuration, same seed:
a retried trial resumes exactly)."""


def config_key(spec: Mapping[str, Any], recipe: Mapping[str, Any]) -> str:
    """A stable identity of (architecture, recipe), independent of seed and trial number."""
    body = {"spec": spec, "recipe": {k: v for k, v in recipe.items() if k not in NOT_IDENTITY}}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def seed_of(key: str) -> int:
    """The training seed of a configuration: the same for every trial of it."""
    return int(key[:8], 16) % 2**31


_COUNT_SLOTS = (
    "SELECT COUNT(*) FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
    "WHERE t.study_id = :study_id AND t.trial_id != :trial_id AND a.key = :slot_key "
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
    params = {"study_id": study_id, "trial_id": exclude, "slot_key": SLOT_ATTR}
    return int(retrying(_scalar, storage, query, params))


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


def find_configuration(
    storage: optuna.storages.RDBStorage, study_id: int, key: str, state: str
) -> int | None:
    """The id of the first trial in ``state`` of the configuration ``key`` (its config key)."""
    params = {"study_id": study_id, "key": IDENTITY_ATTR, "value": json.dumps(key), "state": state}
    found = retrying(_scalar, storage, _FIND_BY_ATTR, params)
    return None if found is None else int(found)


_TRAINING_ELSEWHERE = sqlalchemy.text(
    "SELECT t.trial_id FROM trials t "
    "JOIN trial_user_attributes k ON k.trial_id = t.trial_id "
    "JOIN trial_user_attributes s ON s.trial_id = t.trial_id "
    "WHERE t.study_id = :study_id AND t.state = 'RUNNING' AND t.trial_id != :trial_id "
    "AND k.key = :key AND k.value_json = :value AND s.key = :slot_key AND s.value_json = 'true' "
    "LIMIT 1"
)


def training_elsewhere(
    storage: optuna.storages.RDBStorage, study_id: int, key: str, *, exclude: int
) -> int | None:
    """Another running trial that claimed a slot for configuration ``key``, if any."""
    params = {
        "study_id": study_id,
        "trial_id": exclude,
        "key": IDENTITY_ATTR,
        "value": json.dumps(key),
        "slot_key": SLOT_ATTR,
    }
    found = retrying(_scalar, storage, _TRAINING_ELSEWHERE, params)
    return None if found is None else int(found)


@contextlib.contextmanager
def slot_lock(storage: optuna.storages.RDBStorage, name: str) -> Iterator[None]:
    """Serialise work on one study (``name``) across processes and hosts: its setup, the
    numbering of its workers, and its slot claims. One lock per study: behind PgBouncer in
    transaction mode each lock held while its holder needs another connection pins a server
    connection, so few locks leave the pool room.

    PostgreSQL: a session advisory lock (released by the server if the holder dies); MySQL:
    GET_LOCK; SQLite: a lock file beside the database (one host by nature). A worker waiting
    for the lock holds no database connection: it tries, gives the connection back to its
    pool and tries again, so that a fleet waiting for one holder never takes the connections
    the holder needs (a blocking wait did, and 64 workers deadlocked on 100 connections).
    """
    backend = storage.engine.dialect.name
    key = _lock_key(name)
    if backend == "sqlite":
        from filelock import FileLock

        with FileLock(_lock_file(storage, name)):
            yield
        return
    if backend == "postgresql":
        lock = sqlalchemy.text("SELECT pg_try_advisory_lock(:n)")
        unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:n)")
        lock_id: int | str = key
    else:
        lock = sqlalchemy.text("SELECT GET_LOCK(:n, 0)")
        unlock = sqlalchemy.text("SELECT RELEASE_LOCK(:n)")
        lock_id = f"optuna-search-{key & 0xFFFFFFFF:08x}"
    conn = acquire(storage.engine.connect, lock, lock_id)
    try:
        yield
    finally:
        try:
            conn.execute(unlock, {"n": lock_id})
        except Exception:
            # The connection died: the server released the lock with it. Never return a
            # connection that may still hold the lock to the pool.
            conn.invalidate()
        # The lock is released. Closing rolls back, which fails if the connection died just
        # now (a restart); the pool then discards the connection, and nothing is lost.
        with contextlib.suppress(sqlalchemy.exc.DBAPIError):
            conn.close()


def ever_locked(storage: optuna.storages.RDBStorage, name: str) -> bool:
    """Whether :func:`slot_lock` may ever have been taken for study ``name``: always on a
    server (its locks leave nothing behind to tell); with SQLite, whether its lock file exists
    (taking the lock creates it: a study found without it was not made by this tool, and is
    refused without writing one)."""
    if storage.engine.dialect.name != "sqlite":
        return True
    return Path(_lock_file(storage, name)).exists()


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _lock_file(storage: optuna.storages.RDBStorage, name: str) -> str:
    return f"{storage.engine.url.database}.{_lock_key(name) & 0xFFFFFFFF:08x}.lock"


LOCK_POLL_SECONDS = (0.005, 0.25)
"""The first and the longest wait between two tries for a taken lock (randomised)."""


def acquire(
    connect: Callable[[], sqlalchemy.engine.Connection],
    lock: sqlalchemy.TextClause,
    lock_id: int | str,
) -> sqlalchemy.engine.Connection:
    """A connection that holds the lock (``lock`` tries it without waiting); between tries
    the connection is closed (back to its pool), so that waiting holds none."""
    delay = LOCK_POLL_SECONDS[0]
    while True:
        conn = retrying(_try_lock, connect, lock, lock_id, what="taking a lock")
        if conn is not None:
            return conn
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 1.5, LOCK_POLL_SECONDS[1])


def _try_lock(
    connect: Callable[[], sqlalchemy.engine.Connection],
    lock: sqlalchemy.TextClause,
    lock_id: int | str,
) -> sqlalchemy.engine.Connection | None:
    conn = connect()
    try:
        taken = bool(conn.execute(lock, {"n": lock_id}).scalar())
    except BaseException:
        conn.invalidate()
        raise
    if taken:
        return conn
    conn.close()
    return None
