"""The objective: one Optuna trial = sample, judge against the budget, train, report.

1. Sample the architecture and recipe from the study's space; build the spec.
2. Judge it (exact parameter and MAC counts, microseconds). Record the verdict as Optuna
   constraints and user attrs. Over budget or invalid: raise ``TrialPruned`` before any
   model is built or torch is even imported; the sampler learns from the constraint.
3. A configuration identical to one that already completed is not trained again: the trial
   returns that result and says so (``reused_from``).
4. Claim a training slot (the study's trial count counts trials that trained), then train
   with the engine, reporting validation accuracy every epoch to the pruner. Training
   resumes from the configuration's checkpoint if an earlier (crashed) trial left one.
5. Record the curve, timings, device, versions, commit and seed; return the accuracy (and
   the parameter or MAC count for a two-objective study).

A diverged or out-of-memory trial ends PRUNED with its outcome recorded and gives its slot
back; the worker goes on.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from search import budget, storage
from search.config import StudyConfig
from search.space import Candidate

# Recipe fields that do not change a trial's result: left out of the configuration's identity.
_NOT_IDENTITY = ("seed", "compile", "eval_batch_size")


class StudyFull(Exception):
    """The study already has its trial count of trained trials: this trial is surplus."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the worker. A KeyboardInterrupt, so that Optuna records the
    running trial as failed (never leaving it RUNNING) and re-raises it to stop the loop."""


class Signals:
    """The worker's view of SIGINT/SIGTERM: set by its handler, read by the objective.

    The first signal interrupts a training run at once (the trial is recorded as failed and
    re-queued to resume from its checkpoint) or stops the loop before the next trial.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self.in_training = False


@dataclass
class TrialOutcome:
    """What one trial did, for the worker's progress line and summary."""

    number: int
    outcome: str
    """``rejected``, ``completed``, ``pruned``, ``reused``, ``diverged``, ``out_of_memory``,
    ``duplicate`` or ``surplus``."""
    detail: str = ""
    value: float | None = None


def git_commit() -> str | None:
    """The project's commit: $OPTUNA_SEARCH_GIT_COMMIT (set in container images, which hold
    no .git), else ``git rev-parse`` when running from a checkout."""
    import os

    if os.environ.get("OPTUNA_SEARCH_GIT_COMMIT"):
        return os.environ["OPTUNA_SEARCH_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def config_key(spec: dict[str, Any], recipe: dict[str, Any]) -> str:
    """A stable identity of (architecture, recipe), independent of seed and trial number."""
    body = {"spec": spec, "recipe": {k: v for k, v in recipe.items() if k not in _NOT_IDENTITY}}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Objective:
    """The callable given to ``study.optimize``; one per worker process."""

    config: StudyConfig
    storage: optuna.storages.RDBStorage
    device: str
    load_data: Callable[[], Any]
    """Returns the data splits (called once, at the first trial that trains)."""
    checkpoint_dir: Path
    log: Callable[[str], None] = print
    compile: bool = False
    signals: Signals = field(default_factory=Signals)
    memory_ledger: Any = None
    """A ``search.gpu.MemoryLedger`` when several workers share this GPU."""
    artifact_store: Any = None
    """Where finished trials upload their learning curve and weights (optuna.artifacts)."""
    worker_name: str = ""
    """Recorded on every trial (``worker``), for the report's timeline per worker."""
    dry_run: float | None = None
    """Seconds a trial "trains" in a dry run: everything but training is real (sampling,
    budget check, storage, slots, pruning), to test storage and workers without a GPU."""
    outcomes: list[TrialOutcome] = field(default_factory=list)
    _data: Any = None
    _environment: dict[str, Any] | None = None

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        if self.signals.received:
            trial.set_user_attr("outcome", "interrupted")
            raise Interrupted(self.signals.received)
        started = time.perf_counter()
        if self.worker_name:
            trial.set_user_attr("worker", self.worker_name)
        candidate = self.config.space.sample(trial)
        recipe, recipe_error = self._recipe(candidate)
        if candidate.spec is None or recipe_error is not None:
            verdict = budget.invalid(
                candidate.error or recipe_error or "", max_macs=self.config.max_macs
            )
        else:
            verdict = budget.judge(
                candidate.spec, max_params=self.config.max_params, max_macs=self.config.max_macs
            )
        self._record_verdict(trial, candidate, verdict)
        if not verdict.feasible:
            trial.set_user_attr("outcome", "rejected")
            trial.set_user_attr("check_ms", round((time.perf_counter() - started) * 1e3, 3))
            self._done(trial, "rejected", verdict.reason or "")
            raise optuna.TrialPruned(verdict.reason)

        assert candidate.spec is not None and recipe is not None
        spec_dict = candidate.spec.to_dict()
        key = config_key(spec_dict, recipe)
        recipe["seed"] = int(key[:8], 16) % 2**31  # same configuration, same seed: resumable
        trial.set_user_attr("config_key", key)
        trial.set_user_attr("spec", spec_dict)
        trial.set_user_attr("recipe", recipe)
        trial.set_user_attr("seed", recipe["seed"])

        study_id = trial.study._study_id
        finished = storage.find_trial_by_attr(self.storage, study_id, "config_key", key, "COMPLETE")
        if finished is not None:
            return self._reuse(trial, finished)
        running = storage.find_trial_by_attr(self.storage, study_id, "config_key", key, "RUNNING")
        if running is not None and running != trial._trial_id:
            trial.set_user_attr("outcome", "duplicate")
            self._done(trial, "duplicate", "the same configuration is training in another trial")
            raise optuna.TrialPruned("the same configuration is already training")

        self._claim(trial)
        return self._train(trial, candidate, recipe, key)

    # --- steps ------------------------------------------------------------------------------

    def _recipe(self, candidate: Candidate) -> tuple[dict[str, Any] | None, str | None]:
        from model.recipe import TrainConfig

        try:
            config = TrainConfig(**{**candidate.recipe, "compile": self.compile})
        except ValueError as e:
            return None, str(e)
        return config.to_dict(), None

    def _record_verdict(self, trial: optuna.Trial, candidate: Candidate, v: budget.Verdict) -> None:
        for key, value in v.violations.items():
            trial.set_constraint(key, value)
        trial.set_user_attr("arch", candidate.spec.name if candidate.spec else "invalid")
        trial.set_user_attr("params", v.params)
        trial.set_user_attr("macs", v.macs)
        trial.set_user_attr("verdict", v.label)
        if v.reason is not None:
            trial.set_user_attr("reason", v.reason)

    def _reuse(self, trial: optuna.Trial, finished_id: int) -> float | tuple[float, float]:
        done = self.storage.get_trial(finished_id)
        trial.set_user_attr("outcome", "reused")
        trial.set_user_attr("reused_from", done.number)
        for attr in ("curve", "val_accuracy", "epochs_trained", "epoch_seconds"):
            if attr in done.user_attrs:
                trial.set_user_attr(attr, done.user_attrs[attr])
        assert done.values is not None
        self._done(trial, "reused", f"same configuration as trial {done.number}", done.values[0])
        return done.values[0] if len(done.values) == 1 else (done.values[0], done.values[1])

    def _claim(self, trial: optuna.Trial) -> None:
        total = self.config.trials
        study = trial.study
        with storage.slot_lock(self.storage, study.study_name):
            held = storage.count_slots(self.storage, study._study_id, exclude=trial._trial_id)
            if total is not None and held >= total:
                trial.set_user_attr("outcome", "surplus")
                trial.set_user_attr("counted", False)
                self._done(trial, "surplus", f"the study already has {held} trained trials")
                raise StudyFull(f"the study already has its {total} trained trials")
            trial.set_user_attr("counted", True)
            self.storage.flush()  # visible to the next claimant before the lock is released

    def _train(
        self, trial: optuna.Trial, candidate: Candidate, recipe: dict[str, Any], key: str
    ) -> float | tuple[float, float]:
        assert candidate.spec is not None
        if self.dry_run is not None:  # before importing the engine: a dry run never needs torch
            return self._dry_train(trial, candidate, recipe)
        from model.checkpoint import load_checkpoint
        from model.engine import OutOfMemory, TrainingDiverged, train
        from model.recipe import TrainConfig

        if self._data is None:
            self._data = self.load_data()
        environment = self._environment_attrs()
        for name, value in environment.items():
            trial.set_user_attr(name, value)
        path = self.checkpoint_dir / trial.study.study_name / f"{key}.pt"
        total_epochs = recipe["epochs"]
        curve: list[float] = []
        losses: list[float] = []
        previous = load_checkpoint(path) if path.exists() else None
        if previous is not None:  # a retried trial: show the pruner the epochs already done
            for record in previous["history"]:
                curve.append(record["val_accuracy"])
                losses.append(record["train_loss"])
                trial.report(record["val_accuracy"], record["epoch"])
            trial.set_user_attr("resumed_from_epoch", len(curve))
        label = f"{candidate.spec.name} ({trial.user_attrs['params']:,} params)"
        self.log(
            f"trial {trial.number}: training {label} for {total_epochs} epochs"
            + (f", resuming at epoch {len(curve) + 1}" if curve else "")
        )
        multi = self.config.multi_objective

        def on_epoch_end(record: Any) -> bool:
            curve.append(record.val_accuracy)
            losses.append(record.train_loss)
            trial.set_user_attr("curve", curve)
            self.log(
                f"trial {trial.number} epoch {record.epoch}/{total_epochs}: val "
                f"{record.val_accuracy:.4f}, loss {record.train_loss:.3f}, "
                f"{record.seconds:.1f} s, {record.images_per_second:,.0f} img/s"
            )
            if not multi:
                trial.report(record.val_accuracy, record.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {record.epoch}")
            return False

        started = time.perf_counter()
        config = TrainConfig(**recipe)
        try:
            with self._reserve_memory(trial, candidate.spec, config):
                self._reset_peak_memory()
                self.signals.in_training = True
                if self.signals.received:
                    raise Interrupted(self.signals.received)
                result = train(
                    candidate.spec,
                    self._data,
                    config,
                    device=self.device,
                    checkpoint=path,
                    on_epoch_end=on_epoch_end,
                )
        except Interrupted as e:
            # Recorded as failed by Optuna (it re-raises to stop the loop); re-queued with the
            # same parameters so that the next run resumes from the checkpoint.
            trial.set_user_attr("outcome", "interrupted")
            trial.set_user_attr("reason", f"interrupted by {e}")
            trial.set_user_attr("counted", False)
            self._finish(trial, curve, losses, started, "interrupted")
            trial.study.enqueue_trial(trial.params, user_attrs={"resumes": trial.number})
            self._done(
                trial, "interrupted", f"by {e}; re-queued to resume at epoch {len(curve) + 1}"
            )
            raise
        except optuna.TrialPruned:
            self._finish(trial, curve, losses, started, "pruned")
            path.unlink(missing_ok=True)
            self._done(trial, "pruned", f"at epoch {len(curve)}", curve[-1] if curve else None)
            raise
        except (TrainingDiverged, OutOfMemory) as e:
            outcome = "diverged" if isinstance(e, TrainingDiverged) else "out_of_memory"
            if outcome == "out_of_memory":
                trial.set_constraint("memory", 1.0)
            trial.set_user_attr("counted", False)  # it did not train: give the slot back
            trial.set_user_attr("reason", str(e))
            self._finish(trial, curve, losses, started, outcome)
            path.unlink(missing_ok=True)
            self._done(trial, outcome, str(e))
            raise optuna.TrialPruned(str(e)) from None
        finally:
            self.signals.in_training = False
            self._release_cuda_cache()
        value = result.val_accuracy
        trial.set_user_attr("val_accuracy", value)
        trial.set_user_attr(
            "epoch_seconds", round(result.train_seconds / max(1, len(result.history)), 3)
        )
        trial.set_user_attr("images_per_second", round(result.images_per_second, 1))
        if self.device.startswith("cuda"):  # to check the memory estimate against
            import torch

            peak = torch.cuda.max_memory_allocated() / 2**30
            trial.set_user_attr("peak_memory_gib", round(peak, 2))
        self._finish(trial, curve, losses, started, "completed")
        if self.artifact_store is not None and result.model is not None:
            from search.artifacts import upload_weights

            upload_weights(
                self.artifact_store,
                trial,
                result.model,
                spec=candidate.spec.to_dict(),
                metadata={
                    "study": trial.study.study_name,
                    "trial": trial.number,
                    "recipe": recipe,
                    "val_accuracy": value,
                },
            )
        path.unlink(missing_ok=True)
        self._done(trial, "completed", label, value)
        if not multi:
            return value
        second = trial.user_attrs[self.config.objectives[1]]
        return value, float(second)

    def _dry_train(
        self, trial: optuna.Trial, candidate: Candidate, recipe: dict[str, Any]
    ) -> float | tuple[float, float]:
        """Sleep instead of training; the score grows with size and depth, like accuracy."""
        import math

        assert candidate.spec is not None and self.dry_run is not None
        started = time.perf_counter()
        params = trial.user_attrs["params"]
        depth = min(candidate.spec.depth, 30)
        lr_miss = abs(math.log(recipe.get("lr", 0.1) / 0.1))
        final = 0.40 + 0.07 * math.log10(params) + 0.002 * depth - 0.02 * lr_miss
        epochs = recipe["epochs"]
        curve = [final * (1 - 0.5 ** (e + 1)) for e in range(epochs)]
        self.signals.in_training = True
        try:
            # The sleep is spread over the epochs, reported one by one as training would.
            for epoch, value in enumerate(curve, 1):
                if self.signals.received:
                    raise Interrupted(self.signals.received)
                time.sleep(self.dry_run / epochs)
                if not self.config.multi_objective:
                    trial.report(value, epoch)
                    if trial.should_prune():
                        self._finish(trial, curve[:epoch], [], started, "pruned")
                        self._done(trial, "pruned", f"dry run, at epoch {epoch}", value)
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")
        except Interrupted as e:
            trial.set_user_attr("outcome", "interrupted")
            trial.set_user_attr("reason", f"interrupted by {e}")
            trial.set_user_attr("counted", False)
            raise
        finally:
            self.signals.in_training = False
        trial.set_user_attr("val_accuracy", final)
        trial.set_user_attr("dry_run", True)
        self._finish(trial, curve, [], started, "completed")
        self._done(trial, "completed", f"dry run, {candidate.spec.name}", final)
        if not self.config.multi_objective:
            return final
        return final, float(trial.user_attrs[self.config.objectives[1]])

    def _reserve_memory(self, trial: optuna.Trial, spec: Any, config: Any) -> Any:
        """Hold this trial's estimated GPU memory in the shared ledger (when there is one).

        On a GPU the estimate is recorded either way (``memory_estimate_gib``, beside the
        measured ``peak_memory_gib``), so that it can be checked.
        """
        import contextlib

        if not self.device.startswith("cuda"):
            return contextlib.nullcontext()
        from model.estimate import data_memory_bytes, training_memory_bytes
        from search.gpu import CONTEXT_BYTES

        data = self._data
        data_bytes = data_memory_bytes(train_images=len(data.train), val_images=len(data.val))
        trained = training_memory_bytes(spec, batch_size=config.batch_size)
        trial.set_user_attr("memory_estimate_gib", round((trained + data_bytes) / 2**30, 2))
        if self.memory_ledger is None:
            return contextlib.nullcontext()
        need = trained + data_bytes + CONTEXT_BYTES

        def waiting(nbytes: int, free: int) -> None:
            self.log(
                f"trial {trial.number}: waiting for {nbytes / 2**30:.1f} GiB of GPU memory "
                f"({max(free, 0) / 2**30:.1f} GiB unreserved)"
            )

        return self.memory_ledger.reserve(need, on_wait=waiting)

    def _reset_peak_memory(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()

    def _release_cuda_cache(self) -> None:
        # The caching allocator keeps freed blocks; give them back so that other workers on
        # this GPU can use what the ledger says is free.
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _finish(
        self,
        trial: optuna.Trial,
        curve: list[float],
        losses: list[float],
        started: float,
        outcome: str,
    ) -> None:
        trial.set_user_attr("outcome", outcome)
        trial.set_user_attr("curve", curve)
        trial.set_user_attr("loss_curve", [round(v, 5) for v in losses])
        trial.set_user_attr("epochs_trained", len(curve))
        trial.set_user_attr("train_seconds", round(time.perf_counter() - started, 2))
        if self.artifact_store is not None and curve:
            from search.artifacts import upload_curve

            upload_curve(
                self.artifact_store,
                trial,
                {
                    "trial": trial.number,
                    "outcome": outcome,
                    "epoch": list(range(1, len(curve) + 1)),
                    "val_accuracy": curve,
                    "train_loss": losses,
                },
            )

    def _environment_attrs(self) -> dict[str, Any]:
        if self._environment is None:
            import torch

            from model.engine import device_name, resolve_device

            self._environment = {
                "device": device_name(resolve_device(self.device)),
                "host": platform.node(),
                "torch_version": torch.__version__,
                "optuna_version": optuna.__version__,
                "git_commit": git_commit(),
            }
        return self._environment

    def _done(
        self, trial: optuna.Trial, outcome: str, detail: str, value: float | None = None
    ) -> None:
        self.outcomes.append(TrialOutcome(trial.number, outcome, detail, value))
        if outcome == "rejected":
            return  # rejections are counted in the summary, not printed one by one
        shown = f" val {value:.4f}" if value is not None else ""
        self.log(f"trial {trial.number}: {outcome}{shown} ({detail})")
