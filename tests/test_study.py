"""Sampler, pruner, and creating or resuming a study from its config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from search.config import load_config
from search.storage import open_storage
from search.study import StudyMismatch, make_pruner, make_sampler, open_study

SMOKE = load_config("smoke")


def test_default_sampler_is_conditional_tpe_and_workers_differ() -> None:
    a = make_sampler(SMOKE, worker=0)
    b = make_sampler(SMOKE, worker=1)
    assert isinstance(a, optuna.samplers.TPESampler)
    assert a._group and a._multivariate and a._constant_liar
    # Same configured seed, different workers: different streams of suggestions.
    study_a = optuna.create_study(sampler=a)
    study_b = optuna.create_study(sampler=b)
    xs = [study_a.ask().suggest_float("x", 0, 1) for _ in range(3)]
    ys = [study_b.ask().suggest_float("x", 0, 1) for _ in range(3)]
    assert xs != ys


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("random", optuna.samplers.RandomSampler),
        ("gp", optuna.samplers.GPSampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("qmc", optuna.samplers.QMCSampler),
    ],
)
def test_other_samplers(name: str, kind: type) -> None:
    config = dataclasses.replace(SMOKE, sampler=dataclasses.replace(SMOKE.sampler, name=name))
    assert isinstance(make_sampler(config), kind)


def test_pruners_have_an_explicit_maximum() -> None:
    asha = make_pruner(SMOKE)
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
    hyper = make_pruner(
        dataclasses.replace(SMOKE, pruner=dataclasses.replace(SMOKE.pruner, name="hyperband"))
    )
    assert isinstance(hyper, optuna.pruners.HyperbandPruner)
    assert hyper._max_resource == SMOKE.pruner.max_epochs == 3
    none = make_pruner(load_config("pareto-wide"))
    assert isinstance(none, optuna.pruners.NopPruner)


def test_created_once_enqueued_once_and_mismatch_refused(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study, created = open_study(SMOKE, storage)
    assert created and study.metric_names == ["val_accuracy"]
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.WAITING]
    assert study.user_attrs["setup_complete"] and "config_yaml" in study.user_attrs
    again, created = open_study(SMOKE, storage)
    assert not created and len(again.trials) == 1
    changed = dataclasses.replace(SMOKE, raw={**SMOKE.raw, "budget": {"max_params": 40000}})
    with pytest.raises(StudyMismatch, match="different config"):
        open_study(changed, storage)
    # Trial count and timeout are run settings: changing them is fine.
    open_study(dataclasses.replace(SMOKE, raw={**SMOKE.raw, "trials": 10}), storage)


def test_two_objectives(tmp_path: Path) -> None:
    config = load_config("pareto-wide")
    study, _ = open_study(config, open_storage(f"sqlite:///{tmp_path / 'p.db'}"))
    assert study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    assert study.metric_names == ["val_accuracy", "params"]


def test_workers_draw_their_numbers_from_the_storage(tmp_path: Path) -> None:
    """Processes started together with one configured seed must not share it (same seed,
    same suggestions): each draws its number from the storage; the first samples exactly as
    the config says, so a single-worker run repeats."""
    from search.study import next_worker

    def first(sampler: optuna.samplers.BaseSampler) -> float:
        return optuna.create_study(sampler=sampler).ask().suggest_float("x", 0.0, 1.0)

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study, _ = open_study(SMOKE, storage)
    assert [next_worker(storage, study) for _ in range(3)] == [0, 1, 2]
    assert first(make_sampler(SMOKE, worker=0)) == first(make_sampler(SMOKE, worker=0))
    assert first(make_sampler(SMOKE, worker=0)) != first(make_sampler(SMOKE, worker=1))


def test_a_study_being_created_is_waited_for_not_refused(tmp_path: Path) -> None:
    """A process that finds the study in the middle of its creation (created, its config not
    stored yet) waits for the creator instead of calling it a foreign study (a fleet of 16
    through PgBouncer lost a worker this way)."""
    import threading

    from search.slots import slot_lock
    from search.study import _set_up

    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}")
    outcome: list[tuple[optuna.Study, bool] | Exception] = []

    def join() -> None:
        try:
            outcome.append(open_study(SMOKE, storage))
        except Exception as e:  # recorded, to fail the test below with it
            outcome.append(e)

    with slot_lock(storage, SMOKE.name):  # the creator, half-way
        study = optuna.create_study(
            study_name=SMOKE.name, storage=storage, directions=SMOKE.directions
        )
        joiner = threading.Thread(target=join)
        joiner.start()
        joiner.join(timeout=1.0)
        assert joiner.is_alive() and outcome == []  # waiting for the lock, not refused
        _set_up(study, SMOKE, storage)
    joiner.join(timeout=30)
    [result] = outcome
    assert not isinstance(result, Exception), result
    joined, created = result
    assert joined.study_name == SMOKE.name and created is False
