"""A trial's record: one schema, one writer, a tolerant typed reader."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from search import record
from search.record import (
    FAILED,
    STARTED_TRAINING,
    TRAINED,
    Outcome,
    RetrainRecord,
    StudyRecord,
    TrialRecord,
    VerdictLabel,
)


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study()


def test_outcome_sets() -> None:
    assert {Outcome.COMPLETED, Outcome.PRUNED} == TRAINED
    assert TRAINED | {Outcome.DIVERGED, Outcome.OUT_OF_MEMORY} == STARTED_TRAINING
    assert Outcome.INTERRUPTED in FAILED and not (FAILED & TRAINED)
    assert Outcome.REJECTED not in STARTED_TRAINING


def test_write_and_read_back() -> None:
    study = _study()
    trial = study.ask()
    retrain = RetrainRecord(epochs=3, test_accuracy=0.9)
    record.write(
        trial,
        outcome=Outcome.COMPLETED,
        verdict=VerdictLabel.FEASIBLE,
        params=12,
        curve=[0.1, 0.5],
        retrain=retrain,
    )
    frozen = study.tell(trial, 0.5)
    assert frozen.user_attrs["outcome"] == "completed"  # plain JSON, for optuna-dashboard
    assert frozen.user_attrs["retrain"] == {**dataclasses.asdict(retrain)}
    r = TrialRecord.of(frozen)
    assert r.outcome is Outcome.COMPLETED and r.verdict is VerdictLabel.FEASIBLE
    assert r.params == 12 and r.curve == [0.1, 0.5] and r.retrain == retrain
    assert r.trained and not r.rejected and record.status(frozen) is Outcome.COMPLETED


def test_an_unknown_key_is_refused() -> None:
    trial = _study().ask()
    with pytest.raises(KeyError, match="not a field of a trial's record: paramz"):
        record.write(trial, paramz=1)
    with pytest.raises(KeyError):
        record.attrs(resume=1)
    with pytest.raises(KeyError):
        record.write_study(_study(), max_param=1)


def test_reader_tolerates_what_earlier_or_later_versions_wrote() -> None:
    r = TrialRecord.from_attrs(
        {"outcome": "teleported", "verdict": "feasible", "someday": 1, "retrain": "odd"}
    )
    assert r.outcome is None and r.verdict is VerdictLabel.FEASIBLE and r.retrain is None
    assert TrialRecord.from_attrs({}) == TrialRecord()


def test_status_from_the_state() -> None:
    study = _study()
    running = study.ask()
    assert record.status(study.trials[0]) is Outcome.RUNNING
    study.tell(running, state=optuna.trial.TrialState.FAIL)
    assert record.status(study.trials[0]) is Outcome.FAILED
    interrupted = study.ask()
    record.write(interrupted, outcome=Outcome.INTERRUPTED)
    study.tell(interrupted, state=optuna.trial.TrialState.FAIL)
    assert record.status(study.trials[1]) is Outcome.INTERRUPTED
    study.enqueue_trial({}, user_attrs=record.attrs(resumes=1))
    assert record.status(study.trials[2]) is Outcome.WAITING
    assert TrialRecord.of(study.trials[2]).resumes == 1


def test_last_accuracy() -> None:
    study = _study()
    pruned = study.ask()
    pruned.report(0.3, 1)
    pruned.report(0.4, 2)
    frozen = study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    assert record.last_accuracy(frozen) == 0.4
    done = study.ask()
    record.write(done, curve=[0.2, 0.6])
    assert record.last_accuracy(study.tell(done, 0.7)) == 0.7


def test_reused_attrs_copy_only_what_is_there() -> None:
    r = TrialRecord(curve=[0.5], val_accuracy=0.5)
    assert record.copy_reused(r) == {"curve": [0.5], "val_accuracy": 0.5}


def test_study_record() -> None:
    study = _study()
    record.write_study(study, objectives=["val_accuracy"], max_params=10, setup_complete=True)
    s = StudyRecord.of(study)
    assert s.objectives == ["val_accuracy"] and s.max_params == 10 and s.setup_complete
