"""Training slots and configurations: the queries on Optuna's tables (SQLite, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import sqlalchemy

from search.slots import count_slots, count_waiting, find_configuration, slot_lock
from search.storage import open_storage


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("pg_url")


def test_slot_queries(url: str) -> None:
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    sid = study._study_id
    done = study.ask()
    done.set_user_attr("counted", True)
    done.set_user_attr("config_key", "abc")
    study.tell(done, 0.5)
    given_back = study.ask()
    given_back.set_user_attr("counted", False)
    study.tell(given_back, state=optuna.trial.TrialState.PRUNED)
    running = study.ask()
    running.set_user_attr("counted", True)
    storage.flush()
    study.enqueue_trial({"x": 1})
    assert count_slots(storage, sid) == 2
    assert count_slots(storage, sid, exclude=running._trial_id) == 1
    assert count_slots(storage, sid, states=("RUNNING",)) == 1
    assert count_waiting(storage, sid) == 1
    assert find_configuration(storage, sid, "abc", "COMPLETE") == done._trial_id
    assert find_configuration(storage, sid, "abc", "RUNNING") is None
    with slot_lock(storage, "s"):
        pass


def _terminate(storage: optuna.storages.RDBStorage, pid: int) -> None:
    """Kill one server process, as a database restart does to every connection."""
    admin_engine = sqlalchemy.create_engine(storage.engine.url, poolclass=sqlalchemy.NullPool)
    with admin_engine.connect() as admin:  # no pool: nothing left connected afterwards
        admin.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.parametrize("when", ["while held", "after the unlock"])
def test_slot_lock_survives_its_connection_dying(pg_url: str, when: str) -> None:
    """A restart that kills the lock's connection (the server then releases the lock) must
    not fail the worker, wherever the kill lands, and the lock must be free afterwards."""
    storage = open_storage(pg_url)
    backend: list[int] = []

    @sqlalchemy.event.listens_for(storage.engine, "after_cursor_execute")
    def kill(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "advisory_lock(" in statement:  # pg_try_advisory_lock: the lock taken
            backend.append(conn.connection.dbapi_connection.info.backend_pid)  # type: ignore[attr-defined]
        if "pg_advisory_unlock" in statement and when == "after the unlock":
            _terminate(storage, backend[-1])  # the unlock ran; closing the connection fails

    with slot_lock(storage, "s"):
        if when == "while held":
            _terminate(storage, backend[-1])
    held = sqlalchemy.text(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with storage.engine.connect() as conn:
        assert conn.execute(held).scalar() == 0
