"""One worker: the loop that takes trials of a study until the study has its trained trials.

``optuna-search run`` runs one worker in its own process (or launches several, one per GPU);
``optuna-search worker`` joins a running study from any host. Every worker:
- opens the storage with heartbeats, so that a trial whose worker dies is failed after the
  grace period and re-queued with the same parameters (resuming from its checkpoint);
- uses its own sampler seed;
- stops when the study holds its trial count of trained trials, waiting first for trials
  still running elsewhere (if one of them dies, its retry still needs a worker);
- treats rejected configurations as free: they do not count, but a run that only ever
  proposes rejected or already-trained configurations stops with a clear message;
- stops cleanly on SIGINT/SIGTERM: the running trial is recorded as failed with the reason
  (never left RUNNING) and re-queued to resume from its checkpoint; a second signal exits at
  once.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from search import slots
from search import storage as storage_mod
from search.artifacts import artifact_store
from search.config import StudyConfig
from search.gpu import TrialMemory
from search.identity import worker_name
from search.log import set_worker
from search.objective import Objective, StudyFull, TrialOutcome
from search.record import FAILED_IN_TRAINING, STARTED_TRAINING, Outcome
from search.results import best_trials
from search.signals import Interrupted, Signals, handle
from search.study import make_sampler, next_worker, open_study
from search.trainer import DryTrainer, EngineTrainer, Trainer

if TYPE_CHECKING:
    from model.data import DataSplits

_log = logging.getLogger("optuna_search.worker")

MAX_FRUITLESS = 5000
"""Consecutive trials without training after which a worker gives up (an exhausted space)."""


@dataclass(frozen=True)
class WorkerOptions:
    storage_url: str
    device: str
    timeout: float | None = None
    compile: bool = False
    worker: int | None = None
    """Index of this worker among those its launcher started (None: started on its own)."""
    heartbeat_interval: int = 10
    grace_period: int = 30
    poll_seconds: float = 2.0
    """How often a worker with nothing left to start checks on trials running elsewhere."""
    share_gpu: bool = False
    """Several workers train on this GPU: reserve each trial's memory in the shared ledger."""
    dry_run: float | None = None
    """Seconds each trial sleeps instead of training (``search.trainer.DryTrainer``):
    everything but training is real, to test storage and workers without a GPU."""


@dataclass
class WorkerSummary:
    outcomes: list[TrialOutcome] = field(default_factory=list)
    seconds: float = 0.0
    stop_reason: str = ""
    signal: str | None = None
    """SIGINT or SIGTERM when a signal stopped the worker."""

    def count(self, *outcomes: Outcome) -> int:
        return sum(o.outcome in outcomes for o in self.outcomes)

    def line(self) -> str:
        completed, pruned = self.count(Outcome.COMPLETED), self.count(Outcome.PRUNED)
        return (
            f"{completed + pruned} trained ({completed} completed, {pruned} "
            f"pruned), {self.count(Outcome.REJECTED)} rejected before training, "
            f"{self.count(Outcome.REUSED)} reused, {self.count(*FAILED_IN_TRAINING)} failed "
            f"in training, in {self.seconds:.1f} s"
        )


def run_worker(
    config: StudyConfig,
    options: WorkerOptions,
    *,
    load_data: Callable[[], DataSplits | None],
    log: Callable[[str], None] = _log.info,
) -> WorkerSummary:
    """Take trials until the study is done, the timeout passes, or ``study.stop()``."""
    started = time.perf_counter()
    storage = storage_mod.open_storage(
        options.storage_url,
        heartbeat_interval=options.heartbeat_interval,
        grace_period=options.grace_period,
    )
    name = worker_name(index=options.worker, device=options.device)
    set_worker(name)  # on every line this process logs from now on
    study, _ = open_study(config, storage)
    study.sampler = make_sampler(config, worker=next_worker(storage, study))
    study_id = study._study_id
    signals = Signals()
    trainer: Trainer = EngineTrainer() if options.dry_run is None else DryTrainer(options.dry_run)
    objective = Objective(
        config=config,
        storage=storage,
        trainer=trainer,
        device=options.device,
        load_data=load_data,
        checkpoint_dir=Path(config.checkpoints),
        log=log,
        compile=options.compile,
        signals=signals,
        memory=_trial_memory(options),
        artifact_store=artifact_store(config.artifacts),
        worker_name=name,
    )
    summary = WorkerSummary(outcomes=objective.outcomes)
    restore = handle(signals, log)
    state = {"fruitless": 0, "rejected_logged": 0}

    def done() -> str | None:
        """Why this worker should stop now, or None. Waits while trials run elsewhere."""
        if signals.received:
            return f"stopped by {signals.received}"
        if config.trials is None:
            return None
        while True:
            if signals.received:
                return f"stopped by {signals.received}"
            held = slots.count_slots(storage, study_id)
            if held < config.trials or slots.count_waiting(storage, study_id):
                return None
            running = slots.count_slots(storage, study_id, states=("RUNNING",))
            if running == 0:
                return f"the study has its {config.trials} trained trials"
            # Fail trials whose worker died (their retries are re-queued), then look again.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            time.sleep(options.poll_seconds)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        last = objective.outcomes[-1].outcome if objective.outcomes else None
        trained = last in STARTED_TRAINING
        state["fruitless"] = 0 if trained else state["fruitless"] + 1
        rejected = summary.count(Outcome.REJECTED)
        if trained and rejected > state["rejected_logged"]:
            log(f"rejected before training so far: {rejected} configurations")
            state["rejected_logged"] = rejected
        single = last is Outcome.COMPLETED and not config.multi_objective
        best = best_trials(study) if single else []  # never a trial a warm start carried in
        if best:
            log(f"best so far: {(best[0].values or [0])[0]:.4f} (trial {best[0].number})")
        if state["fruitless"] >= MAX_FRUITLESS:
            summary.stop_reason = (
                f"{MAX_FRUITLESS} trials in a row were rejected or already trained: the "
                "space seems exhausted; widen it or raise the budget"
            )
            study.stop()
            return
        reason = done()
        if reason is not None:
            summary.stop_reason = reason
            study.stop()

    try:
        reason = done()
        if reason is not None:
            summary.stop_reason = reason
        else:
            with _quiet_optuna():
                study.optimize(
                    objective,
                    timeout=options.timeout,
                    callbacks=[after_trial],
                    catch=(StudyFull,),
                    gc_after_trial=False,
                )
            if not summary.stop_reason:
                summary.stop_reason = "timeout reached" if options.timeout else "stopped"
    except Interrupted:
        summary.stop_reason = f"stopped by {signals.received}"
    finally:
        restore()
    summary.signal = signals.received
    summary.seconds = time.perf_counter() - started
    return summary


def _trial_memory(options: WorkerOptions) -> TrialMemory:
    """GPU memory per trial; reserved in the GPU's shared ledger when workers share it."""
    if not (options.share_gpu and options.device.startswith("cuda")):
        return TrialMemory(options.device)
    from search.gpu import cuda_ledger

    return TrialMemory(options.device, cuda_ledger())


class _quiet_optuna:
    """Optuna logs every trial (and a traceback for each surplus trial); the worker prints
    its own progress lines instead."""

    def __enter__(self) -> None:
        self.level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        optuna.logging.set_verbosity(self.level)
