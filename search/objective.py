"""The objective: one Optuna trial = sample, judge against the budget, train, record.

1. Sample the architecture and recipe from the study's space; build the spec.
2. Judge it (exact parameter and MAC counts, microseconds). Record the verdict as Optuna
   constraints and user attrs. Over budget or invalid: raise ``TrialPruned`` before any
   model is built or torch is even imported; the sampler learns from the constraint.
3. A configuration identical to one that already completed is not trained again: the trial
   returns that result and says so (``reused_from``); one training in another trial is not
   started twice.
4. Claim a training slot (the study's trial count counts trials that trained), then train
   with the trainer, reporting validation accuracy every epoch to the pruner. Training
   resumes from the configuration's checkpoint if an earlier (interrupted or crashed) trial
   left one.
5. Record the curve, timings, device, versions, commit and seed; return the accuracy (and
   the parameter or MAC count for a two-objective study).

A diverged or out-of-memory trial ends PRUNED with its outcome recorded and gives its slot
back; an interrupted one is recorded and re-queued to resume; the worker goes on (or stops).
The trainer is the engine or a dry run's stand-in (``search.trainer``): everything here runs
the same for both. What a trial records is defined in ``search.record``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from model.recipe import TrainConfig
from model.training import EpochRecord, OutOfMemory, TrainingDiverged, TrainResult
from search import record, slots
from search.budget import Verdict
from search.config import StudyConfig
from search.gpu import TrialMemory
from search.provenance import environment
from search.record import Outcome, TrialRecord
from search.signals import Interrupted, Signals
from search.space import Candidate
from search.storage import BufferedRDBStorage
from search.trainer import Trainer

if TYPE_CHECKING:
    from optuna.artifacts import FileSystemArtifactStore

    from model.data import DataSplits
    from model.spec import ResNetSpec

Value = float | tuple[float, float]
"""What a trial returns: the accuracy, and the size for a two-objective study."""


class StudyFull(Exception):
    """The study already has its trial count of trained trials: this trial is surplus."""


@dataclass
class TrialOutcome:
    """What one trial did, for the worker's progress line and summary."""

    number: int
    outcome: Outcome
    detail: str = ""
    value: float | None = None


@dataclass
class Objective:
    """The callable given to ``study.optimize``; one per worker process."""

    config: StudyConfig
    storage: BufferedRDBStorage
    trainer: Trainer
    device: str
    load_data: Callable[[], DataSplits | None]
    """Returns the data splits (called once, at the first trial that trains)."""
    checkpoint_dir: Path
    log: Callable[[str], None] = logging.getLogger("optuna_search.worker").info
    compile: bool = False
    signals: Signals = field(default_factory=Signals)
    memory: TrialMemory = field(default_factory=lambda: TrialMemory("cpu"))
    artifact_store: FileSystemArtifactStore | None = None
    """Where finished trials upload their learning curve and weights (optuna.artifacts)."""
    worker_name: str = ""
    """Recorded on every trial (``worker``), for the report's timeline per worker."""
    outcomes: list[TrialOutcome] = field(default_factory=list)
    _data: DataSplits | None = None
    _data_loaded: bool = False

    def __call__(self, trial: optuna.Trial) -> Value:
        if self.signals.received:
            record.write(trial, outcome=Outcome.INTERRUPTED)
            raise Interrupted(self.signals.received)
        started = time.perf_counter()
        if self.worker_name:
            record.write(trial, worker=self.worker_name)
        candidate = self.config.space.sample(trial)
        recipe, recipe_error = self._recipe(candidate)
        verdict = self.config.budget.judge_candidate(candidate, recipe_error)
        self._record_verdict(trial, candidate, verdict)
        if not verdict.feasible or candidate.spec is None or recipe is None:
            check_ms = round((time.perf_counter() - started) * 1e3, 3)
            record.write(trial, outcome=Outcome.REJECTED, check_ms=check_ms)
            self._done(trial, Outcome.REJECTED, verdict.reason or "")
            raise optuna.TrialPruned(verdict.reason)

        spec_dict = candidate.spec.to_dict()
        key = slots.config_key(spec_dict, recipe.to_dict())
        recipe = TrainConfig.from_dict({**recipe.to_dict(), "seed": slots.seed_of(key)})
        record.write(
            trial, config_key=key, spec=spec_dict, recipe=recipe.to_dict(), seed=recipe.seed
        )
        finished = self._claim(trial, key)
        if finished is not None:
            return self._reuse(trial, finished)
        result = self._train(trial, candidate.spec, recipe, key, verdict)
        return self._value(result, verdict)

    # --- before training ----------------------------------------------------------------------

    def _recipe(self, candidate: Candidate) -> tuple[TrainConfig | None, str | None]:
        try:
            return TrainConfig(**{**candidate.recipe, "compile": self.compile}), None
        except ValueError as e:
            return None, str(e)

    def _record_verdict(self, trial: optuna.Trial, candidate: Candidate, v: Verdict) -> None:
        for key, value in v.violations.items():
            trial.set_constraint(key, value)
        arch = candidate.spec.name if candidate.spec else "invalid"
        record.write(trial, arch=arch, params=v.params, macs=v.macs, verdict=v.label)
        if v.reason is not None:
            record.write(trial, reason=v.reason)

    def _reuse(self, trial: optuna.Trial, finished_id: int) -> Value:
        done = self.storage.get_trial(finished_id)
        record.write(
            trial,
            outcome=Outcome.REUSED,
            reused_from=done.number,
            **record.copy_reused(TrialRecord.of(done)),
        )
        assert done.values is not None
        self._done(
            trial, Outcome.REUSED, f"same configuration as trial {done.number}", done.values[0]
        )
        return done.values[0] if len(done.values) == 1 else (done.values[0], done.values[1])

    def _claim(self, trial: optuna.Trial, key: str) -> int | None:
        """Claim a training slot for configuration ``key``, or return the finished trial of
        it to reuse. Under the study's slot lock, so that no two workers start one
        configuration: the check and the claim are one step, and both this trial's key and
        its claim are committed before the lock is released."""
        total = self.config.trials
        study = trial.study
        with slots.slot_lock(self.storage, study.study_name):
            self.storage.flush()
            finished = slots.find_configuration(self.storage, study._study_id, key, "COMPLETE")
            if finished is not None:
                return finished
            if slots.training_elsewhere(
                self.storage, study._study_id, key, exclude=trial._trial_id
            ):
                record.write(trial, outcome=Outcome.DUPLICATE)
                self._done(trial, Outcome.DUPLICATE, "the same configuration is training elsewhere")
                raise optuna.TrialPruned("the same configuration is already training")
            held = slots.count_slots(self.storage, study._study_id, exclude=trial._trial_id)
            if total is not None and held >= total:
                record.write(trial, outcome=Outcome.SURPLUS, counted=False)
                self._done(trial, Outcome.SURPLUS, f"the study already has {held} trained trials")
                raise StudyFull(f"the study already has its {total} trained trials")
            record.write(trial, counted=True)
            self.storage.flush()  # visible to the next claimant before the lock is released
        return None

    # --- training -----------------------------------------------------------------------------

    def _train(
        self,
        trial: optuna.Trial,
        spec: ResNetSpec,
        recipe: TrainConfig,
        key: str,
        verdict: Verdict,
    ) -> TrainResult:
        if not self._data_loaded:
            self._data, self._data_loaded = self.load_data(), True
        record.write(
            trial,
            **environment(
                device=self.trainer.device_name(self.device),
                framework=self.trainer.framework_version(),
            ),
        )
        if self.trainer.dry_run:
            record.write(trial, dry_run=True)
        path = (
            self.checkpoint_dir / trial.study.study_name / f"{key}{self.trainer.checkpoint_suffix}"
        )
        multi = self.config.multi_objective
        curve: list[float] = []
        losses: list[float] = []

        def add(epoch: EpochRecord) -> None:
            assert epoch.val_accuracy is not None  # a search always has a validation split
            curve.append(epoch.val_accuracy)
            losses.append(epoch.train_loss)
            if not multi:
                trial.report(epoch.val_accuracy, epoch.epoch)

        for earlier in self.trainer.checkpointed(path):  # a retried trial: the epochs done
            add(earlier)
        if curve:
            record.write(trial, resumed_from_epoch=len(curve))
        label = f"{spec.name} ({verdict.params or 0:,} params)"
        self.log(
            f"trial {trial.number}: training {label} for {recipe.epochs} epochs"
            + (f", resuming at epoch {len(curve) + 1}" if curve else "")
        )

        def on_epoch_end(epoch: EpochRecord) -> bool:
            with self.signals.shielded():  # a signal waits for the epoch's records
                add(epoch)
                record.write(trial, curve=curve)
                speed = f", {epoch.images_per_second:,.0f} img/s" if epoch.images_per_second else ""
                self.log(
                    f"trial {trial.number} epoch {epoch.epoch}/{recipe.epochs}: val "
                    f"{epoch.val_accuracy:.4f}, loss {epoch.train_loss:.3f}, "
                    f"{epoch.seconds:.1f} s" + speed
                )
                prune = not multi and trial.should_prune()
            if prune:
                raise optuna.TrialPruned(f"pruned at epoch {epoch.epoch}")
            return False

        started = time.perf_counter()
        need = self.memory.estimate(spec, recipe, self._data)
        if need:  # on a GPU: to check the estimate against the measured peak
            record.write(trial, memory_estimate_gib=round(need / 2**30, 2))
        try:
            with self.memory.hold(need, on_wait=self._waiting(trial)), self.signals.interruptible():
                result = self.trainer.train(
                    spec,
                    self._data,
                    recipe,
                    device=self.device,
                    checkpoint=path,
                    on_epoch_end=on_epoch_end,
                )
        except Interrupted as e:
            # Recorded as failed by Optuna (it re-raises to stop the loop); re-queued with the
            # same parameters so that the next run resumes from the checkpoint.
            record.write(trial, reason=f"interrupted by {e}", counted=False)
            self._finish(trial, curve, losses, started, Outcome.INTERRUPTED)
            trial.study.enqueue_trial(trial.params, user_attrs=record.attrs(resumes=trial.number))
            detail = f"by {e}; re-queued to resume at epoch {len(curve) + 1}"
            self._done(trial, Outcome.INTERRUPTED, detail)
            raise
        except optuna.TrialPruned:
            self._finish(trial, curve, losses, started, Outcome.PRUNED)
            path.unlink(missing_ok=True)
            value = curve[-1] if curve else None
            self._done(trial, Outcome.PRUNED, f"at epoch {len(curve)}", value)
            raise
        except (TrainingDiverged, OutOfMemory) as e:
            outcome = Outcome.DIVERGED if isinstance(e, TrainingDiverged) else Outcome.OUT_OF_MEMORY
            if outcome is Outcome.OUT_OF_MEMORY:
                trial.set_constraint("memory", 1.0)
            record.write(trial, counted=False, reason=str(e))  # it did not train: slot back
            self._finish(trial, curve, losses, started, outcome)
            path.unlink(missing_ok=True)
            self._done(trial, outcome, str(e))
            raise optuna.TrialPruned(str(e)) from None

        value = result.val_accuracy
        assert value is not None
        record.write(
            trial,
            val_accuracy=value,
            epoch_seconds=round(result.train_seconds / max(1, len(result.history)), 3),
            images_per_second=round(result.images_per_second, 1),
        )
        peak = self.memory.peak_gib()
        if peak is not None:
            record.write(trial, peak_memory_gib=peak)
        self._finish(trial, curve, losses, started, Outcome.COMPLETED)
        if self.artifact_store is not None and result.model is not None:
            from search.artifacts import upload_weights

            metadata = {
                "study": trial.study.study_name,
                "trial": trial.number,
                "recipe": recipe.to_dict(),
                "val_accuracy": value,
            }
            upload_weights(
                self.artifact_store, trial, result.model, spec=spec.to_dict(), metadata=metadata
            )
        path.unlink(missing_ok=True)
        self._done(trial, Outcome.COMPLETED, label, value)
        return result

    def _waiting(self, trial: optuna.Trial) -> Callable[[int, int], None]:
        def waiting(nbytes: int, free: int) -> None:
            self.log(
                f"trial {trial.number}: waiting for {nbytes / 2**30:.1f} GiB of GPU memory "
                f"({max(free, 0) / 2**30:.1f} GiB unreserved)"
            )

        return waiting

    def _value(self, result: TrainResult, verdict: Verdict) -> Value:
        value = result.val_accuracy
        assert value is not None
        if not self.config.multi_objective:
            return value
        second = {"params": verdict.params, "macs": verdict.macs}[self.config.objectives[1]]
        assert second is not None
        return value, float(second)

    # --- recording ----------------------------------------------------------------------------

    def _finish(
        self,
        trial: optuna.Trial,
        curve: list[float],
        losses: list[float],
        started: float,
        outcome: Outcome,
    ) -> None:
        record.write(
            trial,
            outcome=outcome,
            curve=curve,
            loss_curve=[round(v, 5) for v in losses],
            epochs_trained=len(curve),
            train_seconds=round(time.perf_counter() - started, 2),
        )
        if self.artifact_store is not None and curve:
            from search.artifacts import upload_curve

            upload_curve(
                self.artifact_store,
                trial,
                {
                    "trial": trial.number,
                    "outcome": outcome.value,
                    "epoch": list(range(1, len(curve) + 1)),
                    "val_accuracy": curve,
                    "train_loss": losses,
                },
            )

    def _done(
        self, trial: optuna.Trial, outcome: Outcome, detail: str, value: float | None = None
    ) -> None:
        self.outcomes.append(TrialOutcome(trial.number, outcome, detail, value))
        if outcome is Outcome.REJECTED:
            return  # rejections are counted in the summary, not printed one by one
        shown = f" val {value:.4f}" if value is not None else ""
        self.log(f"trial {trial.number}: {outcome.value}{shown} ({detail})")
