"""The objective: rejected trials build nothing, feasible ones train and report, results reuse."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest

from search.config import StudyConfig, load_config
from search.objective import Objective, StudyFull, Value
from search.slots import config_key
from search.storage import BufferedRDBStorage, open_storage
from search.study import open_study
from search.trainer import EngineTrainer

SMOKE = dataclasses.replace(load_config("smoke"), enqueue=())  # the tests enqueue their own


def _setup(
    tmp_path: Path, config: StudyConfig = SMOKE
) -> tuple[BufferedRDBStorage, optuna.Study, Objective]:
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study, _ = open_study(config, storage, sampler=optuna.samplers.RandomSampler(seed=1))
    from model.data import load_data

    objective = Objective(
        config=config,
        storage=storage,
        trainer=EngineTrainer(),
        device="cpu",
        checkpoint_dir=tmp_path / "ck",
        load_data=lambda: load_data(dataset="synthetic", val_size=200, synthetic_size=(600, 200)),
        log=lambda line: None,
    )
    return storage, study, objective


def _run_one(
    study: optuna.Study, objective: Objective, params: dict[str, Any] | None = None
) -> tuple[optuna.Trial, Value | None]:
    if params is not None:
        study.enqueue_trial(params)
    trial = study.ask()
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return trial, None
    study.tell(trial, value)
    return trial, value


OVER_BUDGET = {
    "layers": 2,
    "blocks_1": 2,
    "blocks_2": 2,
    "channels_1": 32,
    "channels_2": 32,
    "kernel_1": 5,
    "kernel_2": 5,
    "stride_1": 1,
    "stride_2": 2,
    "pool": 2,
    "lr": 0.1,
}
SMALL = {
    **OVER_BUDGET,
    "layers": 1,
    "blocks_1": 1,
    "channels_1": 8,
    "kernel_1": 3,
    "pool": "global",
}


def test_rejected_trials_never_build_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import model.network

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was built for a rejected configuration")

    monkeypatch.setattr(model.network.ResNet, "__init__", forbidden)
    storage, study, objective = _setup(tmp_path)
    trial, value = _run_one(study, objective, OVER_BUDGET)
    frozen = storage.get_trial(trial._trial_id)
    assert value is None and frozen.state == optuna.trial.TrialState.PRUNED
    assert frozen.user_attrs["verdict"] == "over_budget" and frozen.constraints["params"] > 0
    assert frozen.user_attrs["params"] > SMOKE.budget.max_params
    assert "counted" not in frozen.user_attrs and frozen.intermediate_values == {}
    assert frozen.user_attrs["check_ms"] < 50


def test_rejection_does_not_even_import_torch(tmp_path: Path) -> None:
    """Run in a fresh process: after many rejected trials, torch was never loaded, so no model
    was built and no GPU memory touched."""
    code = textwrap.dedent(f"""
        import dataclasses, sys, optuna
        from pathlib import Path
        from search.config import load_config
        from search.budget import Budget
        from search.objective import Objective
        from search.trainer import EngineTrainer
        from search.storage import open_storage
        from search.study import open_study
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        # A budget almost nothing in b453-space fits: nearly every trial is rejected.
        config = dataclasses.replace(load_config("b453-space"), budget=Budget(300_000), enqueue=())
        storage = open_storage("sqlite:///{tmp_path / "r.db"}")
        study, _ = open_study(config, storage, sampler=optuna.samplers.RandomSampler(seed=0))
        objective = Objective(config=config, storage=storage, device="cuda",
                              trainer=EngineTrainer(),
                              checkpoint_dir=Path("ck"), load_data=lambda: 1 / 0)
        rejected, torch_loaded = 0, False
        while rejected < 40:
            trial = study.ask()
            try:
                objective(trial)
            except optuna.TrialPruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                rejected += 1
                torch_loaded |= "torch" in sys.modules
                continue
            except ZeroDivisionError:  # a feasible one reached training (and loaded torch)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                objective = Objective(config=config, storage=storage, device="cuda",
                                      trainer=EngineTrainer(),
                                      checkpoint_dir=Path("ck"), load_data=lambda: 1 / 0)
                sys.modules.pop("torch", None)  # so later rejections are checked afresh
        print("REJECTED", rejected, "TORCH", torch_loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "REJECTED 40 TORCH False" in out.stdout, out.stdout + out.stderr


def test_a_dry_run_never_imports_torch(tmp_path: Path) -> None:
    """Dry-run workers stand in for GPU work in the stress tests and the scaling benchmark:
    importing torch (seconds per process on a busy machine) would be charged to the service."""
    code = textwrap.dedent(f"""
        import sys
        from search.cli import main
        try:
            main(["run", "--study", "smoke", "--storage", "sqlite:///{tmp_path / "d.db"}",
                  "--dry-run", "0", "--n-trials", "3"])
        except SystemExit as e:
            print("EXIT", e.code)
        print("HEAVY", [m for m in ("torch", "torchvision") if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "3 trained" in out.stdout and "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_feasible_trial_trains_reports_and_records(tmp_path: Path) -> None:
    storage, study, objective = _setup(tmp_path)
    trial, value = _run_one(study, objective, SMALL)
    frozen = storage.get_trial(trial._trial_id)
    assert value is not None and frozen.state == optuna.trial.TrialState.COMPLETE
    assert frozen.user_attrs["counted"] is True and frozen.user_attrs["outcome"] == "completed"
    assert list(frozen.intermediate_values) == [1, 2, 3]
    assert frozen.user_attrs["curve"] == list(frozen.intermediate_values.values())
    assert frozen.user_attrs["val_accuracy"] == value
    for attr in (
        "epoch_seconds",
        "images_per_second",
        "device",
        "torch_version",
        "optuna_version",
        "seed",
        "spec",
        "recipe",
        "config_key",
        "train_seconds",
    ):
        assert attr in frozen.user_attrs, attr
    assert not list((tmp_path / "ck").rglob("*.pt"))  # checkpoint removed once finished

    # The same configuration again: not trained, the result is reused and says so.
    again, value2 = _run_one(study, objective, SMALL)
    frozen2 = storage.get_trial(again._trial_id)
    assert value2 == value and frozen2.user_attrs["reused_from"] == trial.number
    assert frozen2.user_attrs["outcome"] == "reused" and "counted" not in frozen2.user_attrs


def test_a_full_study_refuses_to_train_more(tmp_path: Path) -> None:
    config = dataclasses.replace(SMOKE, trials=1)
    storage, study, objective = _setup(tmp_path, config)
    _run_one(study, objective, SMALL)
    study.enqueue_trial({**SMALL, "channels_1": 16})
    trial = study.ask()
    with pytest.raises(StudyFull):
        objective(trial)
    assert storage.get_trial(trial._trial_id).user_attrs["outcome"] == "surplus"


def test_config_key_ignores_seed_and_compile() -> None:
    spec = {"blocks": [1]}
    assert config_key(spec, {"lr": 0.1, "seed": 1}) == config_key(spec, {"lr": 0.1, "seed": 2})
    assert config_key(spec, {"lr": 0.1}) != config_key(spec, {"lr": 0.2})
