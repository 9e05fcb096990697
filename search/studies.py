"""The studies a storage holds, each in one line: ``optuna-search studies``.

Read with Optuna's API and the trial record (``search.record``): the config a study was made
from, its objectives, how many trials trained, were rejected or are running, its best value
and its last activity. Plain Optuna studies in the same storage are listed too.

Example:
    >>> import optuna
    >>> study = optuna.create_study(study_name="plain", direction="maximize")
    >>> study.tell(study.ask(), 0.5) and None
    >>> s = summarise(study)
    >>> (s.name, s.config, s.trained, s.best_value)
    ('plain', None, 1, [0.5])
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import Counter
from pathlib import Path

import optuna

from search.record import TRAINED, Outcome, StudyRecord, status
from search.results import best_trials


@dataclasses.dataclass(frozen=True)
class StudySummary:
    name: str
    config: str | None
    """The config file's name the study was made from (None: not made by optuna-search)."""
    objectives: list[str]
    directions: list[str]
    trained: int
    rejected: int
    running: int
    waiting: int
    failed: int
    trials: int
    best_value: list[float] | None
    """The best trial's values (one objective), or None (none yet, or a Pareto front)."""
    pareto_size: int | None
    last_activity: datetime.datetime | None

    def as_json(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["last_activity"] = self.last_activity.isoformat() if self.last_activity else None
        return out


def summarise(study: optuna.Study) -> StudySummary:
    trials = study.get_trials(deepcopy=False)
    outcomes = Counter(status(t) for t in trials)
    # Plain Optuna trials carry no record: status() takes a finished one as trained.
    trained = sum(outcomes[o] for o in TRAINED)
    record = StudyRecord.of(study)
    directions = [d.name.lower() for d in study.directions]
    best: list[float] | None = None
    pareto: int | None = None
    found = best_trials(study)  # a warm start's carried trials are not this study's best
    if len(directions) > 1:
        pareto = len(found)
    elif found:
        best = list(found[0].values or [])
    times = [t.datetime_complete or t.datetime_start for t in trials]
    stamps = [t for t in times if t is not None]
    return StudySummary(
        name=study.study_name,
        config=Path(record.config_file).name if record.config_file else None,
        objectives=record.objectives or study.metric_names or [],
        directions=directions,
        trained=trained,
        rejected=outcomes[Outcome.REJECTED],
        running=outcomes[Outcome.RUNNING],
        waiting=outcomes[Outcome.WAITING],
        failed=outcomes[Outcome.FAILED] + outcomes[Outcome.INTERRUPTED],
        trials=len(trials),
        best_value=best,
        pareto_size=pareto,
        last_activity=max(stamps) if stamps else None,
    )


def summaries(storage: optuna.storages.BaseStorage) -> list[StudySummary]:
    """Every study of ``storage``, most recently active first."""
    names = [s.study_name for s in storage.get_all_studies()]
    found = [summarise(optuna.load_study(study_name=n, storage=storage)) for n in names]
    oldest = datetime.datetime.min
    return sorted(found, key=lambda s: s.last_activity or oldest, reverse=True)
