"""``optuna-search worker``: join a study as one more worker, from any host.

The study stores its config: a worker on a host without the config file joins by name.
"""

from __future__ import annotations

import argparse
import os

from search.cli.common import config_and_url, load_config, quiet_optuna, say
from search.cli.run import add_trial_args, work_here
from search.errors import as_usage_error

HELP = DESCRIPTION = "join a study as one more worker, from any host"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_trial_args(p)
    p.add_argument("--gpu", type=int, metavar="N", help="use only GPU N (CUDA_VISIBLE_DEVICES)")
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    p.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)


def take_action(args: argparse.Namespace) -> int:
    from search.prepare import check_heartbeat, open_checked, prepare, stored_study_config
    from search.study import StudyMismatch, open_study

    if args.launched:  # stop (record, re-queue) when the launcher dies, not run on orphaned
        from search.signals import stop_with_parent

        stop_with_parent(os.getppid())
    if args.gpu is not None:  # before torch is imported: this process sees only that GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
        args.device = args.device or "cuda"
    check_heartbeat(args.heartbeat_interval, args.grace_period)
    quiet_optuna()
    stored = stored_study_config(args.study, args.storage)
    if stored is not None:
        config, url = load_config(args, stored[0]), stored[1]
    else:
        config, url = config_and_url(args)
    plan = prepare(
        config, url, device=args.device, dry_run=args.dry_run, say=say, check_cpu=not args.launched
    )
    storage = open_checked(url)
    with as_usage_error(StudyMismatch):
        open_study(config, storage)  # creates the study if this worker is the first
    storage.engine.dispose()  # the worker opens its own storage: keep no idle connection
    return work_here(args, plan)
