"""Retraining a trial: its configuration trained for long, tested, and the result recorded
on the trial (``retrain`` in its record), where ``best`` and the report show it.

The run checkpoints every epoch (rerun the same command to resume) and evaluates on the test
set once, at the end: the search selected on the validation split, so this is the first time
the test set is looked at.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from model.recipe import TrainConfig
from model.spec import ResNetSpec, spec_from_dict
from search import record
from search.config import StudyConfig
from search.errors import as_usage_error
from search.record import RetrainRecord, TrialRecord
from search.storage import set_finished_trial_attrs

if TYPE_CHECKING:
    import optuna

    from model.data import DataSplits
    from model.training import EpochRecord, TrainResult


@dataclasses.dataclass(frozen=True)
class RetrainPlan:
    """What a retrain of one trial trains, and where its checkpoint lives."""

    trial: optuna.trial.FrozenTrial
    spec: ResNetSpec
    recipe: TrainConfig
    checkpoint: Path


def plan(
    config: StudyConfig, trial: optuna.trial.FrozenTrial, *, epochs: int, compile: bool
) -> RetrainPlan:
    """The trial's architecture and recipe, with ``epochs``; bad values are usage errors."""
    r = TrialRecord.of(trial)
    assert r.spec is not None and r.recipe is not None, "only trials that trained retrain"
    values = {**r.recipe, "epochs": epochs, **({"compile": True} if compile else {})}
    with as_usage_error(ValueError):
        recipe = TrainConfig.from_dict(values)
    checkpoint = Path(config.checkpoints) / config.name / f"retrain-{trial.number}-{epochs}.pt"
    return RetrainPlan(trial, spec_from_dict(r.spec), recipe, checkpoint)


def retrain(
    retrain_plan: RetrainPlan,
    data: DataSplits,
    *,
    device: str,
    storage: optuna.storages.RDBStorage,
    on_epoch_end: Callable[[EpochRecord], bool | None] | None = None,
) -> tuple[TrainResult, RetrainRecord]:
    """Train, test, and record the result on the trial. Raises the engine's
    ``TrainingError`` when the run fails (the record is left as it was)."""
    from model.engine import train

    p = retrain_plan
    result = train(
        p.spec,
        data,
        p.recipe,
        device=device,
        checkpoint=p.checkpoint,
        on_epoch_end=on_epoch_end,
        evaluate_test=True,
    )
    outcome = RetrainRecord(
        epochs=result.epochs,
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        seconds=round(result.seconds, 1),
        device=result.device,
        date=datetime.date.today().isoformat(),
    )
    set_finished_trial_attrs(storage, p.trial._trial_id, record.attrs(retrain=outcome))
    p.checkpoint.unlink(missing_ok=True)
    return result, outcome
