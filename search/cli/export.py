"""``optuna-search export``: write a trial's architecture and recipe as YAML."""

from __future__ import annotations

import argparse

from search.cli.common import add_storage_arg, add_study_arg, load_study, pick_trial
from search.paths import writable_file

HELP = DESCRIPTION = "write a trial's architecture and recipe as YAML (train --config)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study_arg(p)
    add_storage_arg(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--trial", type=int, metavar="N", help="default: the best trial")


def take_action(args: argparse.Namespace) -> int:
    from search.record import TrialRecord
    from search.results import export_config

    writable_file(args.output, "-o")
    config, study, _ = load_study(args)
    trial = pick_trial(study, args.trial)
    export_config(trial, config.name, args.output)
    print(
        f"wrote {args.output}: trial {trial.number}, {TrialRecord.of(trial).arch}; train it "
        f"with: optuna-search train --config {args.output} --epochs N"
    )
    return 0
