"""One worker: the loop that takes trials of a study until the study has its trained trials.

``optuna-search run`` runs one worker in its own process (or launches several, one per GPU);
``optuna-search worker`` joins a running study from any host. Every worker:
- opens the storage with heartbeats, so that a trial whose worker dies is failed after the
  grace period and re-queued with the same parameters (resuming from its checkpoint);
- uses its own sampler seed;
- stops when the study holds its trial count of trained trials, waiting first for trials
  still running elsewhere (if one of them dies, its retry still needs a worker);
- treats rejected configurations as free: they do not count, but a run that only ever
  proposes rejected or already-trained configurations stops with a clear message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from search import storage as storage_mod
from search.config import StudyConfig
from search.objective import Objective, StudyFull, TrialOutcome
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


@dataclass
class WorkerSummary:
    outcomes: list[TrialOutcome] = field(default_factory=list)
    seconds: float = 0.0
    stop_reason: str = ""

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
    objective = Objective(
        config=config,
        storage=storage,
        device=options.device,
        load_data=load_data,
        checkpoint_dir=Path(config.checkpoints),
        log=log,
        compile=options.compile,
    )
    summary = WorkerSummary(outcomes=objective.outcomes)
    state = {"fruitless": 0, "rejected_logged": 0}

    def done() -> str | None:
        """Why this worker should stop now, or None. Waits while trials run elsewhere."""
        if config.trials is None:
            return None
        while True:
            held = storage_mod.count_slots(storage, study_id)
            if held < config.trials or storage_mod.count_waiting(storage, study_id):
                return None
            running = storage_mod.count_slots(storage, study_id, states=("RUNNING",))
            if running == 0:
                return f"the study has its {config.trials} trained trials"
            # Fail trials whose worker died (their retries are re-queued), then look again.
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
    summary.seconds = time.perf_counter() - started
    return summary


class _quiet_optuna:
    """Optuna logs every trial (and a traceback for each surplus trial); the worker prints
    its own progress lines instead."""

    def __enter__(self) -> None:
        self.level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        optuna.logging.set_verbosity(self.level)
