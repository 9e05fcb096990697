"""``optuna-search run``: create or resume a study and run its trials (the main job).

In this process, or as worker processes: one per GPU (``--gpus``, ``--trials-per-gpu``) or
K on one device (``--workers``), all on the same study.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from typing import TYPE_CHECKING

from search.cli.common import (
    add_data_dir_arg,
    add_device_arg,
    add_storage_arg,
    add_study_arg,
    config_and_url,
    default_device,
    int_list,
    say,
)
from search.errors import UsageError, as_usage_error

if TYPE_CHECKING:
    import optuna

    from search.launcher import Slot
    from search.prepare import RunPlan

HELP = DESCRIPTION = "create or resume a study and run its trials (the main job)"

_log = logging.getLogger("optuna_search.run")


def add_trial_args(p: argparse.ArgumentParser) -> None:
    """The flags of both commands that run trials: ``run`` and ``worker``."""
    add_study_arg(p)
    add_storage_arg(p)
    p.add_argument(
        "--n-trials",
        type=int,
        metavar="N",
        help="trained trials the study should hold in total (default: the config's)",
    )
    p.add_argument(
        "--timeout",
        metavar="DURATION",
        help="stop starting trials after this (seconds, or 90m, 12h)",
    )
    add_data_dir_arg(p)
    add_device_arg(p)
    p.add_argument("--compile", action="store_true", help="torch.compile each trial's model")
    p.add_argument(
        "--dry-run",
        type=float,
        metavar="SECONDS",
        help="trials sleep this long instead of training: test storage and "
        "workers without a GPU (everything else is real)",
    )
    p.add_argument(
        "--heartbeat-interval",
        type=int,
        default=10,
        metavar="S",
        help="seconds between a running trial's heartbeats (default 10)",
    )
    p.add_argument(
        "--grace-period",
        type=int,
        default=30,
        metavar="S",
        help="a trial silent this long is failed and retried (default 30)",
    )
    p.add_argument(
        "--trials-per-gpu",
        type=int,
        default=1,
        metavar="K",
        help="K workers per GPU (GPU memory is reserved per trial; default 1)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_trial_args(p)
    p.add_argument(
        "--gpus",
        type=int_list,
        metavar="0,1,..",
        help="one worker process per listed GPU, each seeing only its GPU",
    )
    p.add_argument(
        "--workers", type=int, metavar="K", help="K worker processes on --device (e.g. the CPU)"
    )
    # Only run: the study is created (and warm-started) by run before its workers start; a
    # worker that creates a study takes the config's warm_start: instead.
    p.add_argument(
        "--warm-start",
        metavar="OLD[,OLD2]",
        help="start a new study from the fitting trials of these studies (same storage; "
        "added to the config's warm_start:)",
    )


def take_action(args: argparse.Namespace) -> int:
    from search.prepare import check_heartbeat, open_checked, prepare
    from search.slots import count_slots
    from search.storage import mask
    from search.study import StudyMismatch, open_study

    slots = _slots(args)
    check_heartbeat(args.heartbeat_interval, args.grace_period)
    config, url = config_and_url(args)
    plan = prepare(config, url, device=args.device, dry_run=args.dry_run, say=say)
    storage = open_checked(url)
    with as_usage_error(StudyMismatch):
        study, created = open_study(config, storage)
    held = count_slots(storage, study._study_id)
    total = f"/{config.trials}" if config.trials else ""
    where = f"{len(slots)} workers" if slots else f"device {plan.device}"
    if plan.data is None:
        what = f"dry run ({args.dry_run:g} s a trial)"
    else:
        data = plan.data
        what = f"data {data.source}, {len(data.train):,} train / {len(data.val):,} val images"
    if slots:
        from search import log

        log.set_worker(f"{os.uname().nodename}/launcher")
    _log.info(
        f"study {config.name} ({'created' if created else 'resumed'}) in {mask(url)}: "
        f"{held}{total} trained trials so far; {where}; {what}"
    )
    storage.engine.dispose()  # the worker (or launcher) below holds no idle connection of it
    if not slots:
        code = work_here(args, plan)
    else:
        from search.launcher import launch, worker_argv

        os.environ["OPTUNA_SEARCH_STORAGE"] = url  # to the workers, not on their command line
        argv = worker_argv(
            study=args.study,
            config=config,
            heartbeat_interval=args.heartbeat_interval,
            grace_period=args.grace_period,
            data_dir=args.data_dir,
            compile=args.compile,
            trials_per_gpu=args.trials_per_gpu,
            dry_run=args.dry_run,
            verbosity=-1 if args.quiet else (args.verbose or 0),
        )
        code = launch(slots, argv)
        _log.info(f"workers ended ({'all well' if code == 0 else f'status {code}'})")
    print_best(study)
    return code


def _slots(args: argparse.Namespace) -> list[Slot]:
    """The worker processes --gpus / --workers ask for (none: train in this process)."""
    from search.launcher import device_slots, gpu_slots

    if args.trials_per_gpu < 1 or (args.workers is not None and args.workers < 1):
        raise UsageError("--trials-per-gpu and --workers must be at least 1")
    if args.gpus is not None and args.workers is not None:
        raise UsageError("give --gpus (one worker per GPU) or --workers (on one device), not both")
    if args.gpus is not None:
        import torch

        count = torch.cuda.device_count()
        missing = [g for g in args.gpus if not 0 <= g < count]
        if missing:
            have = f" (0..{count - 1})" if count else ""
            raise UsageError(
                f"--gpus {','.join(map(str, args.gpus))}: this machine has {count} GPU(s)"
                f"{have}; no GPU {missing[0]}" + ("" if count else ": use --workers K on the CPU")
            )
        return gpu_slots(args.gpus, args.trials_per_gpu)
    if args.workers is not None:
        return device_slots(args.device or default_device(), args.workers)
    if args.trials_per_gpu > 1:
        raise UsageError("--trials-per-gpu needs --gpus")
    return []


def work_here(args: argparse.Namespace, plan: RunPlan) -> int:
    """Run one worker in this process; its exit status."""
    from search.worker import WorkerOptions, run_worker

    options = WorkerOptions(
        storage_url=plan.url,
        device=plan.device,
        timeout=plan.config.timeout,
        compile=bool(args.compile),
        worker=getattr(args, "worker_index", None),
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        share_gpu=args.trials_per_gpu > 1,
        dry_run=args.dry_run,
    )
    summary = run_worker(plan.config, options, load_data=lambda: plan.data)
    _log.info(f"done: {summary.line()}; {summary.stop_reason}")
    if summary.signal is not None:
        return 128 + signal.Signals[summary.signal].value
    return 0


def print_best(study: optuna.Study) -> None:
    from search.record import TrialRecord
    from search.results import best_trials

    best = best_trials(study)
    if not best:
        print("no completed feasible trial yet")
    elif len(study.directions) == 1:
        t = best[0]
        r = TrialRecord.of(t)
        assert t.values is not None
        print(
            f"best: trial {t.number}, {r.arch}, {r.params or 0:,} params, val accuracy "
            f"{t.values[0]:.4f}; see: optuna-search best --study {study.study_name}"
        )
    else:
        print(
            f"Pareto front: {len(best)} trials; see: optuna-search best --study {study.study_name}"
        )
