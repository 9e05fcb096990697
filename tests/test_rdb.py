"""What search.storage relies on in Optuna's storage API: every method classified, the private
names still routed as the buffer needs, and the tables and columns the flush writes with
SQLAlchemy Core. A new Optuna release that changes any of it fails here, saying where."""

from __future__ import annotations

import ast
import collections
import inspect
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb import models  # private on purpose: the schema the flush writes
from optuna.trial import TrialState

from search import rdb as storage_module
from search.rdb import _AS_IS, _BUFFERED, _RETRIED, BufferedRDBStorage
from search.storage import open_storage

_CLASSIFIED = {*_RETRIED, *_BUFFERED, *_AS_IS}
_WHERE = (
    "classify it in search/rdb.py: _RETRIED (it touches the database: flush the buffer "
    "first, retry through a lost connection), _BUFFERED (a trial write to hold until the next "
    "flush) or _AS_IS (neither)"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("pg_url")


def _public_callables(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}


@pytest.mark.parametrize("cls", [BaseStorage, RDBStorage], ids=lambda c: c.__name__)
def test_every_public_storage_method_is_classified(cls: type) -> None:
    unclassified = sorted(_public_callables(cls) - _CLASSIFIED)
    if unclassified:
        pytest.fail(
            "\n".join(
                f"optuna {optuna.__version__}: {cls.__name__}.{name} is not classified; {_WHERE}"
                for name in unclassified
            )
        )


def _private_backend_calls() -> dict[str, int]:
    """``self._backend._name`` in the source of _CachedStorage's module: name -> line."""
    module = sys.modules[_CachedStorage.__module__]
    calls: dict[str, int] = {}
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "_backend"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            calls.setdefault(node.attr, node.lineno)
    return calls


def test_cached_storages_private_backend_calls_are_classified() -> None:
    """create_study wraps every RDBStorage in _CachedStorage, which calls some private methods
    of its backend directly: each must be buffered or flushed first, or reads miss writes."""
    calls = _private_backend_calls()
    assert "_set_trial_param" in calls  # the source is read as expected
    path = inspect.getsourcefile(_CachedStorage)
    unclassified = sorted(set(calls) - _CLASSIFIED)
    if unclassified:
        pytest.fail(
            "\n".join(
                f"optuna {optuna.__version__}: _CachedStorage calls self._backend.{name} "
                f"({path}:{calls[name]}), which is not classified; {_WHERE}"
                for name in unclassified
            )
        )


def test_the_lists_are_disjoint_and_name_optunas_methods() -> None:
    counts = collections.Counter((*_RETRIED, *_BUFFERED, *_AS_IS))
    assert not [n for n, c in counts.items() if c > 1], "a method is in two lists"
    gone = sorted(n for n in _CLASSIFIED if not callable(getattr(RDBStorage, n, None)))
    assert not gone, (
        f"optuna {optuna.__version__}: RDBStorage no longer has {gone}; "
        "reclassify (or remove) them in search/rdb.py"
    )


def test_the_lists_are_applied() -> None:
    own = vars(BufferedRDBStorage)
    for name in _RETRIED:
        assert getattr(own.get(name), "__wrapped__", None) is getattr(RDBStorage, name), name
    for name in _AS_IS:
        assert getattr(BufferedRDBStorage, name) is getattr(RDBStorage, name), name
    for name in _BUFFERED:
        if name != "set_trial_param":
            assert name in own, name
    # Optuna's public set_trial_param is kept: it routes to _set_trial_param, buffered.
    assert BufferedRDBStorage.set_trial_param is RDBStorage.set_trial_param
    assert "self._set_trial_param(" in inspect.getsource(RDBStorage.set_trial_param)


def _rows(url: str, trial_id: int) -> dict[str, list[str]]:
    """The trial's rows, read on a connection of its own (another process's view)."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
    queries = {
        "params": "SELECT param_name FROM trial_params WHERE trial_id = :t",
        "user": "SELECT key FROM trial_user_attributes WHERE trial_id = :t",
        "system": "SELECT key FROM trial_system_attributes WHERE trial_id = :t",
    }
    try:
        with engine.connect() as conn:
            return {
                kind: sorted(conn.execute(sqlalchemy.text(q), {"t": trial_id}).scalars())
                for kind, q in queries.items()
            }
    finally:
        engine.dispose()


def test_suggestions_wait_for_the_flush(url: str) -> None:
    """The buffering the benchmark measured: suggest_* goes through _CachedStorage, which
    calls the private _set_trial_param. If Optuna reroutes it, this fails (rows too early)."""
    storage = open_storage(url)
    sampler = optuna.samplers.RandomSampler(seed=0)  # reads nothing: no flush while sampling
    study = optuna.create_study(storage=storage, study_name="s", sampler=sampler)
    assert isinstance(study._storage, _CachedStorage) and study._storage._backend is storage
    trial = study.ask()
    tid = trial._trial_id
    trial.suggest_int("x", 0, 10)
    trial.suggest_float("y", 0.0, 1.0)
    trial.set_user_attr("u", 1)
    storage.set_trial_param(tid, "z", 1.0, FloatDistribution(0.0, 2.0))  # the public route
    storage.set_trial_system_attr(tid, "s", "v")
    assert _rows(url, tid) == {"params": [], "user": [], "system": []}
    storage.flush()
    assert _rows(url, tid) == {"params": ["x", "y", "z"], "user": ["u"], "system": ["s"]}
    assert storage.get_trial(tid).params.keys() == {"x", "y", "z"}


def test_the_flushs_tables_match_optunas_models() -> None:
    """The flush's Core statements name Optuna's tables and columns; they must still exist."""
    tables = [
        storage_module._TRIALS,
        storage_module._TRIAL_PARAMS,
        *storage_module._TRIAL_ATTRS.values(),
    ]
    for table in tables:
        model = models.BaseModel.metadata.tables.get(table.name)
        assert model is not None, (
            f"optuna {optuna.__version__} has no table {table.name!r}: update the Core "
            "statements of BufferedRDBStorage's flush in search/rdb.py"
        )
        missing = sorted({c.name for c in table.c} - {c.name for c in model.c})
        assert not missing, (
            f"optuna {optuna.__version__}: table {table.name!r} lacks {missing}: update the "
            "Core statements of BufferedRDBStorage's flush in search/rdb.py"
        )


def test_optuna_stores_the_state_name(url: str) -> None:
    """The flush reads trials.state as text and looks it up in TrialState by name."""
    state = models.TrialModel.__table__.c.state.type
    assert isinstance(state, sqlalchemy.Enum) and state.enum_class is TrialState
    assert state.enums == [s.name for s in TrialState]
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    read = sqlalchemy.text("SELECT state FROM trials WHERE trial_id = :t")
    with storage.engine.connect() as conn:
        assert conn.execute(read, {"t": trial._trial_id}).scalar() == "RUNNING"
    study.tell(trial, 1.0)
    with storage.engine.connect() as conn:
        assert conn.execute(read, {"t": trial._trial_id}).scalar() == "COMPLETE"


def test_a_finished_trial_refuses_buffered_writes_with_optunas_error(url: str) -> None:
    """Optuna's check runs after the flush's transaction is rolled back: on SQLite, whose
    transactions take the write lock, it must not wait for the flush's own lock."""
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    study.tell(trial, 1.0)
    storage.set_trial_param(trial._trial_id, "x", 1.0, FloatDistribution(0.0, 2.0))
    start = time.monotonic()
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError, match="already finished"):
        storage.flush()
    assert time.monotonic() - start < 10
    storage.flush()  # the refused writes are dropped, as Optuna drops them
    assert _rows(url, trial._trial_id)["params"] == []


def test_an_unknown_trial_is_a_key_error(url: str) -> None:
    storage = open_storage(url)
    optuna.create_study(storage=storage, study_name="s")
    storage.set_trial_user_attr(12345, "k", 1)
    with pytest.raises(KeyError):
        storage.flush()


def test_a_distribution_is_checked_against_the_stored_ones(url: str) -> None:
    """Without a cached distribution (another process, a fresh storage object), the flush
    compares with the study's stored parameters, as Optuna's own write does."""
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    first = study.ask()
    first.suggest_int("x", 0, 10)
    study.tell(first, 1.0)
    other = open_storage(url)  # nothing cached
    second = optuna.load_study(study_name="s", storage=other).ask()
    other.set_trial_param(second._trial_id, "x", 0.5, FloatDistribution(0.0, 1.0))
    with pytest.raises(ValueError, match="Cannot set different distribution"):
        other.flush()
    other.set_trial_param(second._trial_id, "x", 3, IntDistribution(0, 10))  # compatible
    other.flush()
    assert other.get_trial(second._trial_id).params == {"x": 3}
