"""A trial's record: what every trial of a study says about itself, defined once.

Optuna keeps a trial's state (RUNNING, COMPLETE, PRUNED, FAIL, WAITING), values and
parameters; everything else this service knows about a trial is a user attr, written here and
read here. :class:`TrialRecord` is the schema (one field per attr key) and the typed reader;
:func:`write` is the only writer. :class:`Outcome` says what a trial did, with the sets that
say what counts as trained, failed or rejected; :class:`VerdictLabel` is the budget check's
verdict. A study's own attrs (its config, budget, trial count) are :class:`StudyRecord`.

Attrs are plain JSON in Optuna's tables, so optuna-dashboard shows them, and studies written
by earlier versions read the same (unknown keys are ignored, missing ones are None).

Example:
    >>> import optuna
    >>> study = optuna.create_study()
    >>> trial = study.ask()
    >>> write(trial, outcome=Outcome.REJECTED, verdict=VerdictLabel.OVER_BUDGET, params=7)
    >>> record = TrialRecord.of(study.tell(trial, state=optuna.trial.TrialState.PRUNED))
    >>> record.outcome is Outcome.REJECTED, record.params, record.rejected
    (True, 7, True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

if TYPE_CHECKING:
    import optuna
    from _typeshed import DataclassInstance
    from optuna.trial import FrozenTrial


class Outcome(str, Enum):
    """What a trial did. The first nine are recorded by the objective, ``carried`` by a warm
    start; the last three are derived from Optuna's state when a trial recorded none (it is
    running or waiting, or its process died)."""

    COMPLETED = "completed"
    PRUNED = "pruned"
    """Stopped by the pruner after training began."""
    REJECTED = "rejected"
    """Over budget or invalid: judged and pruned before anything was built."""
    REUSED = "reused"
    """The same configuration had completed: its result was reused, nothing trained."""
    DIVERGED = "diverged"
    OUT_OF_MEMORY = "out_of_memory"
    INTERRUPTED = "interrupted"
    """Stopped by a signal; re-queued to resume from its checkpoint."""
    DUPLICATE = "duplicate"
    """The same configuration was training in another trial."""
    SURPLUS = "surplus"
    """Sampled after the study had its trained trials."""
    CARRIED = "carried"
    """Copied from an earlier study by a warm start (``search.warm_start``): it trained
    there, not here, so it holds no slot, is never a best trial, and informs the sampler."""
    RUNNING = "running"
    WAITING = "waiting"
    FAILED = "failed"


TRAINED = frozenset({Outcome.COMPLETED, Outcome.PRUNED})
"""Trials that trained: they hold a slot of the study's trial count."""
FAILED_IN_TRAINING = frozenset({Outcome.DIVERGED, Outcome.OUT_OF_MEMORY})
"""Trials that started training and could not go on; they give their slot back."""
STARTED_TRAINING = TRAINED | FAILED_IN_TRAINING
"""Trials that reached the trainer (a worker whose trials never do has an exhausted space)."""
FAILED = FAILED_IN_TRAINING | {Outcome.INTERRUPTED, Outcome.FAILED}
"""Trials that ended without a result of their own."""
SKIPPED = frozenset({Outcome.DUPLICATE, Outcome.SURPLUS})
"""Trials that did nothing because another trial did (or had done) the work."""


class VerdictLabel(str, Enum):
    """The budget check's verdict on a sampled configuration."""

    FEASIBLE = "feasible"
    OVER_BUDGET = "over_budget"
    INVALID = "invalid"
    """Not a buildable architecture or a valid recipe."""


def is_number(value: object) -> TypeGuard[float]:
    """A finite int or float (JSON attrs may hold anything, and bools are ints)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class RetrainRecord:
    """The result of ``optuna-search retrain``, recorded on the trial it retrained."""

    epochs: int | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    seconds: float | None = None
    device: str | None = None
    date: str | None = None

    @classmethod
    def from_value(cls, value: object) -> RetrainRecord | None:
        if not isinstance(value, Mapping):
            return None
        return _from_mapping(cls, value)

    @property
    def has_test_accuracy(self) -> bool:
        return is_number(self.test_accuracy)


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """Every user attr a trial may carry, typed; one field per key.

    Written by the objective (the verdict first, then what training did) and by
    ``retrain``; read by the report, ``best``, ``export``, the CLI and the worker.
    """

    worker: str | None = None
    """The worker that ran it (``host/w0``, ``host/w3/gpu1``)."""
    enqueued: str | None = None
    """The label of the config's enqueued trial it ran."""
    resumes: int | None = None
    """The number of the interrupted trial this re-queued trial continues."""
    # The verdict, before anything is built.
    arch: str | None = None
    """The architecture's name, or ``invalid``."""
    params: int | None = None
    """Exact parameter count (None when invalid)."""
    macs: int | None = None
    """Multiply-accumulates per 32x32 image (None when invalid)."""
    verdict: VerdictLabel | None = None
    reason: str | None = None
    """Why it was rejected, interrupted, or failed in training."""
    check_ms: float | None = None
    """Time from the trial's start to its rejection."""
    outcome: Outcome | None = None
    # The configuration that trains.
    config_key: str | None = None
    """Identity of (architecture, recipe): equal keys train to the same result."""
    spec: dict[str, Any] | None = None
    """``ResNetSpec.to_dict()``."""
    recipe: dict[str, Any] | None = None
    """``TrainConfig.to_dict()``."""
    seed: int | None = None
    counted: bool | None = None
    """Holds a slot of the study's trial count (true while training and once trained)."""
    reused_from: int | None = None
    # What training did.
    resumed_from_epoch: int | None = None
    curve: list[float] | None = None
    """Validation accuracy after each epoch."""
    loss_curve: list[float] | None = None
    val_accuracy: float | None = None
    epochs_trained: int | None = None
    epoch_seconds: float | None = None
    train_seconds: float | None = None
    images_per_second: float | None = None
    memory_estimate_gib: float | None = None
    peak_memory_gib: float | None = None
    dry_run: bool | None = None
    """Training was replaced by a sleep: the accuracy is a stand-in score."""
    # Provenance.
    device: str | None = None
    host: str | None = None
    torch_version: str | None = None
    optuna_version: str | None = None
    git_commit: str | None = None
    # Later.
    retrain: RetrainRecord | None = None
    # A warm start's copy of a trial of an earlier study.
    warm_start_from: str | None = None
    """The study it was carried from (``NAME``, or ``NAME in URL`` for another storage)."""
    warm_start_trial: int | None = None
    """Its number in that study."""

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        return cls.from_attrs(trial.user_attrs)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        return _from_mapping(cls, attrs)

    @property
    def rejected(self) -> bool:
        return self.outcome is Outcome.REJECTED

    @property
    def trained(self) -> bool:
        return self.outcome in TRAINED

    @property
    def carried(self) -> bool:
        return self.outcome is Outcome.CARRIED

    @property
    def numeric_curve(self) -> list[float]:
        """The curve's finite values (a stored curve is JSON: anything could be there)."""
        return [float(v) for v in self.curve or [] if is_number(v)]

    def objective_value(self, objective: str) -> float | None:
        """The second objective of a two-objective study (``params`` or ``macs``)."""
        value = getattr(self, objective) if objective in FIELDS else None
        return float(value) if is_number(value) else None


_R = TypeVar("_R", bound="DataclassInstance")


def _from_mapping(cls: type[_R], attrs: Mapping[str, Any]) -> _R:
    """The known keys of ``attrs`` as ``cls``; enums and nested records are parsed, values
    that are not what the schema says are dropped (None), unknown keys ignored."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in attrs or attrs[f.name] is None:
            continue
        value = attrs[f.name]
        kind = _ENUMS.get(f.name)
        if kind is not None:
            try:
                value = kind(value)
            except ValueError:
                continue
        elif f.name == "retrain":
            value = RetrainRecord.from_value(value)
        values[f.name] = value
    return cls(**values)


_ENUMS: dict[str, type[Enum]] = {"outcome": Outcome, "verdict": VerdictLabel}

FIELDS = frozenset(f.name for f in dataclasses.fields(TrialRecord))
"""Every user-attr key a trial may carry."""

SLOT_ATTR = "counted"
"""The attr the slot queries filter on (a trial holds a slot when it is true)."""
IDENTITY_ATTR = "config_key"
"""The attr that finds a trial of the same configuration."""
REUSED_ATTRS = ("curve", "val_accuracy", "epochs_trained", "epoch_seconds")
"""What a trial that reuses a finished one copies from it."""
CARRIED_ATTRS = (
    *("arch", "spec", "recipe", "seed", "loss_curve", "train_seconds", "images_per_second"),
    *("dry_run", "device", "host", "torch_version", "optuna_version", "git_commit"),
    *REUSED_ATTRS,
)
"""What a warm start copies from an earlier study's trial: what trained and how. Not that
study's accounting (``counted``, ``config_key``: a carried trial holds no slot and is never
reused in place of training), nor its verdict (judged again against the new budget)."""
assert {SLOT_ATTR, IDENTITY_ATTR, *REUSED_ATTRS, *CARRIED_ATTRS} <= FIELDS


def _json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def attrs(**values: Any) -> dict[str, Any]:
    """User attrs as a dict, keys checked against the schema (for ``enqueue_trial``)."""
    unknown = set(values) - FIELDS
    if unknown:
        raise KeyError(f"not a field of a trial's record: {', '.join(sorted(unknown))}")
    return {key: _json(value) for key, value in values.items()}


def write(trial: optuna.Trial, **values: Any) -> None:
    """Record ``values`` on a running trial (keys are :class:`TrialRecord`'s fields)."""
    for key, value in attrs(**values).items():
        trial.set_user_attr(key, value)


def copy_reused(finished: TrialRecord) -> dict[str, Any]:
    """The attrs a reusing trial takes from the finished trial it reuses."""
    return {k: getattr(finished, k) for k in REUSED_ATTRS if getattr(finished, k) is not None}


def copy_carried(source: TrialRecord) -> dict[str, Any]:
    """The attrs a warm start takes from an earlier study's trial."""
    return {k: getattr(source, k) for k in CARRIED_ATTRS if getattr(source, k) is not None}


def status(trial: FrozenTrial) -> Outcome:
    """What the trial did: its recorded outcome, else what its state says.

    A FAIL is ``interrupted`` when the worker recorded that, else ``failed`` (its process
    died, or it raised); RUNNING and WAITING trials are ``running`` and ``waiting``.
    """
    state = trial.state.name
    if state == "RUNNING":
        return Outcome.RUNNING
    if state == "WAITING":
        return Outcome.WAITING
    recorded = TrialRecord.of(trial).outcome
    if state == "FAIL":
        return Outcome.INTERRUPTED if recorded is Outcome.INTERRUPTED else Outcome.FAILED
    if recorded is not None:
        return recorded
    return Outcome.COMPLETED if state == "COMPLETE" else Outcome.PRUNED


def last_accuracy(trial: FrozenTrial) -> float | None:
    """Validation accuracy: the final value, else the last of the curve or of the reported
    values (a pruned trial's last accuracy)."""
    values = trial.values
    if trial.state.name == "COMPLETE" and values:
        return float(values[0])
    curve = TrialRecord.of(trial).numeric_curve
    if curve:
        return curve[-1]
    if trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return float(values[0]) if values and is_number(values[0]) else None


# ---------------------------------------------------------------------------------------------
# The study's own record


@dataclasses.dataclass(frozen=True)
class StudyRecord:
    """A study's user attrs: written once when the study is created."""

    identity: str | None = None
    """Fingerprint of the config's objectives, budget, space and data."""
    config_file: str | None = None
    config_yaml: str | None = None
    """The config the study was created from (with its name): a worker needs nothing else."""
    objectives: list[str] | None = None
    max_params: int | None = None
    max_macs: int | None = None
    trials: int | None = None
    setup_complete: bool | None = None
    workers_started: int | None = None
    """How many worker processes joined the study (each takes the next sampler seed)."""
    warm_start: list[dict[str, Any]] | None = None
    """One entry per study it was warm-started from, written once that study's trials are
    carried: ``{"from": label, "carried": n, "left_out": {reason: count}}``."""

    @classmethod
    def of(cls, study: optuna.Study) -> StudyRecord:
        return _from_mapping(cls, study.user_attrs)


STUDY_FIELDS = frozenset(f.name for f in dataclasses.fields(StudyRecord))


def write_study(study: optuna.Study, **values: Any) -> None:
    """Record ``values`` on the study (keys are :class:`StudyRecord`'s fields)."""
    unknown = set(values) - STUDY_FIELDS
    if unknown:
        raise KeyError(f"not a field of a study's record: {', '.join(sorted(unknown))}")
    for key, value in values.items():
        study.set_user_attr(key, _json(value))
