"""Storage URLs, the buffered RDB storage, writes on finished trials (SQLite, PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from search.storage import (
    DEFAULT_STORAGE,
    STORAGE_ENV,
    StorageError,
    mask,
    open_storage,
    parse_url,
    resolve_url,
    set_finished_trial_attrs,
)
from tests.conftest import PrivateServer


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("pg_url")


def test_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert resolve_url(None) == DEFAULT_STORAGE
    assert resolve_url(None, "sqlite:///cfg.db") == "sqlite:///cfg.db"
    monkeypatch.setenv(STORAGE_ENV, "postgresql://env/db")
    assert resolve_url(None, "sqlite:///cfg.db") == "postgresql://env/db"
    assert resolve_url("sqlite:///flag.db", "sqlite:///cfg.db") == "sqlite:///flag.db"
    assert resolve_url("runs/study.db") == "sqlite:///runs/study.db"


def test_passwords_are_masked() -> None:
    assert mask("postgresql://me:s3cret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert "s3cret" not in mask("postgresql+psycopg://me:s3cret@db/x")
    with pytest.raises(StorageError) as info:
        open_storage("postgresql://me:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(info.value) and "***" in str(info.value)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("not a url://", "invalid storage URL"),
        ("redis://localhost:6379", "unsupported storage"),
        ("sqlite://", "has no file"),
        ("sqlite:///:memory:", "has no file"),
        ("postgresql+nosuchdriver://h/db", "not installed"),
    ],
)
def test_bad_urls(bad: str, fragment: str) -> None:
    with pytest.raises(StorageError, match=fragment):
        parse_url(bad)


def test_plain_postgresql_urls_use_psycopg3() -> None:
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def _commits(storage: optuna.storages.RDBStorage) -> list[int]:
    count = [0]
    sqlalchemy.event.listen(
        storage.engine, "commit", lambda conn: count.__setitem__(0, count[0] + 1)
    )
    return count


def test_a_trial_is_written_in_few_transactions(url: str) -> None:
    storage = open_storage(url)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(storage=storage, study_name="s", sampler=sampler)
    commits = _commits(storage)
    trial = study.ask()
    before = commits[0]
    for i in range(25):
        trial.suggest_int(f"p{i}", 0, 10)
    for i in range(6):
        trial.set_user_attr(f"a{i}", i)
    assert commits[0] == before  # buffered so far
    frozen = storage.get_trial(trial._trial_id)  # any storage call commits the buffer first
    assert len(frozen.params) == 25 and frozen.user_attrs["a5"] == 5
    assert commits[0] == before + 2  # one transaction of writes, one of the read
    study.tell(trial, 1.0)
    other = optuna.load_study(study_name="s", storage=url).trials[0]  # another connection
    assert len(other.params) == 25 and other.user_attrs["a5"] == 5


def test_buffered_writes_keep_optunas_checks(url: str) -> None:
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    first = study.ask()
    first.suggest_int("x", 0, 10)
    study.tell(first, 1.0)
    second = study.ask()
    second.suggest_float("x", 0.0, 1.0)  # incompatible with the int distribution of trial 0
    with pytest.raises(ValueError, match="Cannot set different distribution"):
        storage.flush()


def test_buffered_writes_wait_out_a_database_outage(private_pg: PrivateServer) -> None:
    """A worker flushes its trial's writes when it claims a slot: a database that is down at
    that moment (a restart) must delay the write, not fail the worker."""
    storage = open_storage(private_pg.url)
    study = optuna.create_study(storage=storage, study_name="outage")
    trial = study.ask()
    trial.set_user_attr("counted", True)  # buffered
    private_pg.stop()
    back = threading.Timer(2.0, private_pg.start)
    back.start()
    try:
        storage.flush()
    finally:
        back.join()
    assert storage.get_trial(trial._trial_id).user_attrs == {"counted": True}


def test_user_attr_on_a_finished_trial(url: str) -> None:
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    study.tell(trial, 0.9)
    with pytest.raises(RuntimeError):  # Optuna's own API refuses
        storage.set_trial_user_attr(trial._trial_id, "k", 1)  # buffered: refused at the flush
        storage.flush()
    set_finished_trial_attrs(storage, trial._trial_id, {"retrain": {"test_accuracy": 0.95}})
    set_finished_trial_attrs(storage, trial._trial_id, {"retrain": {"test_accuracy": 0.96}})
    reread = optuna.load_study(study_name="s", storage=url).trials[0]
    assert reread.user_attrs["retrain"] == {"test_accuracy": 0.96}


def test_sqlite_uses_write_ahead_logging(tmp_path: Path) -> None:
    open_storage(f"sqlite:///{tmp_path / 'w.db'}")
    code = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode')"
    code += ".fetchone()[0])"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "wal"


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'nope' / 'x.db'}")


@pytest.mark.parametrize(
    "message",
    [
        "FATAL: sorry, too many clients already",
        "FATAL: remaining connection slots are reserved for roles with the SUPERUSER attribute",
        "FATAL: the database system is starting up",
        "ERROR: query_wait_timeout",  # PgBouncer: its pool stayed full
        "ERROR: no more connections allowed (max_client_conn)",  # PgBouncer's client limit
    ],
)
def test_a_full_server_or_pool_is_waited_for(message: str) -> None:
    """Busy, not broken: these are retried with backoff, wrapped as Optuna and SQLAlchemy
    wrap them; other errors are not."""
    import sqlalchemy

    from search.storage import too_many_clients

    wrapped = RuntimeError("storage")
    wrapped.__cause__ = sqlalchemy.exc.OperationalError("connect", {}, Exception(message))
    assert too_many_clients(wrapped)
    assert not too_many_clients(RuntimeError("relation studies does not exist"))
