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

import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from search import storage as storage_mod
from search.artifacts import artifact_store
from search.config import StudyConfig
from search.objective import Interrupted, Objective, Signals, StudyFull, TrialOutcome
from search.study import make_sampler, open_study

MAX_FRUITLESS = 5000
"""Consecutive trials without training after which a worker gives up (an exhausted space)."""


@dataclass(frozen=True)
class WorkerOptions:
    storage_url: str
    device: str
    timeout: float | None = None
    compile: bool = False
    worker: int = 0
    """Index of this worker among those started together (offsets the sampler seed)."""
    heartbeat_interval: int = 10
    grace_period: int = 30
    poll_seconds: float = 2.0
    """How often a worker with nothing left to start checks on trials running elsewhere."""
    share_gpu: bool = False
    """Several workers train on this GPU: reserve each trial's memory in the shared ledger."""
    dry_run: float | None = None
    """Seconds each trial sleeps instead of training (see ``Objective.dry_run``)."""


@dataclass
class WorkerSummary:
    outcomes: list[TrialOutcome] = field(default_factory=list)
    seconds: float = 0.0
    stop_reason: str = ""
    signal: str | None = None
    """SIGINT or SIGTERM when a signal stopped the worker."""

    def count(self, *outcomes: str) -> int:
        return sum(o.outcome in outcomes for o in self.outcomes)

    def line(self) -> str:
        trained = self.count("completed", "pruned")
        return (
            f"{trained} trained ({self.count('completed')} completed, {self.count('pruned')} "
            f"pruned), {self.count('rejected')} rejected before training, "
            f"{self.count('reused')} reused, {self.count('diverged', 'out_of_memory')} failed "
            f"in training, in {self.seconds:.1f} s"
        )


def run_worker(
    config: StudyConfig,
    options: WorkerOptions,
    *,
    load_data: Callable[[], Any],
    log: Callable[[str], None] = print,
) -> WorkerSummary:
    """Take trials until the study is done, the timeout passes, or ``study.stop()``."""
    started = time.perf_counter()
    storage = storage_mod.open_storage(
        options.storage_url,
        heartbeat_interval=options.heartbeat_interval,
        grace_period=options.grace_period,
    )
    study_id = storage.get_study_id_from_name(config.name)
    offset = len(storage.get_all_trials(study_id, deepcopy=False))
    study, _ = open_study(
        config, storage, sampler=make_sampler(config, worker=options.worker, offset=offset)
    )
    signals = Signals()
    ledger = None
    if options.share_gpu and options.device.startswith("cuda"):
        from search.gpu import cuda_ledger

        ledger = cuda_ledger()
    objective = Objective(
        config=config,
        storage=storage,
        device=options.device,
        load_data=load_data,
        checkpoint_dir=Path(config.checkpoints),
        log=log,
        compile=options.compile,
        signals=signals,
        memory_ledger=ledger,
        dry_run=options.dry_run,
        artifact_store=artifact_store(config.artifacts),
        worker_name=_worker_name(options),
    )
    summary = WorkerSummary(outcomes=objective.outcomes)

    def on_signal(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if signals.received is not None:
            log(f"{name} again: exiting at once")
            os._exit(128 + signum)
        signals.received = name
        log(
            f"{name}: stopping; the running trial is recorded and re-queued ({name} again to "
            "exit at once)"
        )
        if signals.in_training:
            raise Interrupted(name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
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
            held = storage_mod.count_slots(storage, study_id)
            if held < config.trials or storage_mod.count_waiting(storage, study_id):
                return None
            running = storage_mod.count_slots(storage, study_id, states=("RUNNING",))
            if running == 0:
                return f"the study has its {config.trials} trained trials"
            # Fail trials whose worker died (their retries are re-queued), then look again.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            time.sleep(options.poll_seconds)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        last = objective.outcomes[-1].outcome if objective.outcomes else ""
        trained = last in ("completed", "pruned", "diverged", "out_of_memory")
        state["fruitless"] = 0 if trained else state["fruitless"] + 1
        rejected = summary.count("rejected")
        if trained and rejected > state["rejected_logged"]:
            log(f"rejected before training so far: {rejected} configurations")
            state["rejected_logged"] = rejected
        if last == "completed" and not config.multi_objective:
            log(f"best so far: {study.best_value:.4f} (trial {study.best_trial.number})")
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
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary.signal = signals.received
    summary.seconds = time.perf_counter() - started
    return summary


def _worker_name(options: WorkerOptions) -> str:
    """``host/w0`` plus the GPU the worker sees, e.g. ``gpu-box/w3/gpu1``."""
    import platform

    name = f"{platform.node()}/w{options.worker}"
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    if options.device.startswith("cuda"):
        name += f"/gpu{gpu}" if gpu else f"/{options.device}"
    return name


class _quiet_optuna:
    """Optuna logs every trial (and a traceback for each surplus trial); the worker prints
    its own progress lines instead."""

    def __enter__(self) -> None:
        self.level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        optuna.logging.set_verbosity(self.level)
