"""What each trial did, read once from the study: one :class:`Row` per trial, and the choices
every part of the report shares (the top trials, the front of accuracy against size)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from typing import Literal

import optuna
from optuna.trial import FrozenTrial

from search.config import DataConfig
from search.record import (
    TRAINED,
    Outcome,
    RetrainRecord,
    TrialRecord,
    VerdictLabel,
    is_number,
    last_accuracy,
    status,
)
from search.results import best_trials, train_command

SizeKey = Literal["params", "macs"]
"""What the accuracy figure puts on its x axis: parameter count, or MACs."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One trial, as the report sees it."""

    number: int
    state: str
    """Optuna's state name: COMPLETE, PRUNED, FAIL, RUNNING or WAITING."""
    outcome: Outcome
    """What the trial did: its recorded outcome, else what its state says."""
    verdict: VerdictLabel | None
    arch: str
    params: int | None
    macs: int | None
    accuracy: float | None
    """Validation accuracy: the final one, or a pruned trial's last reported one."""
    epochs: int | None
    curve: list[float]
    worker: str
    start: datetime.datetime | None
    end: datetime.datetime | None
    values: list[float] | None
    record: TrialRecord
    """Everything else the trial recorded about itself (spec, recipe, retrain, device, ...)."""

    @property
    def trained(self) -> bool:
        return self.outcome in TRAINED

    @property
    def tested(self) -> RetrainRecord | None:
        """Its ``optuna-search retrain`` result, where that measured a test accuracy."""
        retrain = self.record.retrain
        return retrain if retrain is not None and retrain.has_test_accuracy else None

    def size(self, key: SizeKey) -> float | None:
        """Its parameter count or MACs, where it has one that a log axis can show."""
        value = self.params if key == "params" else self.macs
        return float(value) if is_number(value) and value > 0 else None

    def retrain_command(self, data: DataConfig) -> str | None:
        """The ``optuna-search train`` command that trains it again (None before it trained)."""
        spec, recipe = self.record.spec, self.record.recipe
        if not spec or not recipe:
            return None
        return train_command(spec, recipe, data=dataclasses.asdict(data))


def read_rows(study: optuna.Study) -> list[Row]:
    """Every trial of the study as a :class:`Row`, in trial-number order."""
    return [_row(t) for t in study.get_trials(deepcopy=False)]


def _row(trial: FrozenTrial) -> Row:
    record = TrialRecord.of(trial)
    curve = record.numeric_curve
    return Row(
        number=trial.number,
        state=trial.state.name,
        outcome=status(trial),
        verdict=record.verdict,
        arch=record.arch or "?",
        params=record.params,
        macs=record.macs,
        accuracy=last_accuracy(trial),
        epochs=record.epochs_trained if record.epochs_trained is not None else len(curve) or None,
        curve=curve,
        worker=record.worker or record.host or "unknown",
        start=trial.datetime_start,
        end=trial.datetime_complete,
        values=list(trial.values) if trial.values is not None else None,
        record=record,
    )


def front_numbers(study: optuna.Study) -> set[int]:
    """The trials on a two-objective study's Pareto front (none for one objective)."""
    return {t.number for t in best_trials(study)} if len(study.directions) > 1 else set()


def pareto_steps(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (size, accuracy) points that beat every smaller one: the best accuracy at or below
    each size, as the corners of a step line."""
    front: list[tuple[float, float]] = []
    for size, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((size, accuracy))
    return front


def rank_top(rows: Sequence[Row], study: optuna.Study, n: int) -> list[Row]:
    """The top ``n`` trained trials: completed ones by accuracy (a two-objective study's
    Pareto set first), then pruned ones, longest-trained and most accurate first."""
    front = front_numbers(study)
    completed = [r for r in rows if r.outcome is Outcome.COMPLETED and r.accuracy is not None]
    completed.sort(key=lambda r: (r.number not in front, -(r.accuracy or 0.0), r.number))
    pruned = [r for r in rows if r.outcome is Outcome.PRUNED and r.accuracy is not None]
    pruned.sort(key=lambda r: (-(r.epochs or 0), -(r.accuracy or 0.0), r.number))
    return (completed + pruned)[: max(n, 0)]
