"""``optuna-search retrain``: train a trial's configuration for long; test accuracy on it."""

from __future__ import annotations

import argparse
import dataclasses
import json

from search.cli.common import (
    add_data_dir_arg,
    add_device_arg,
    add_storage_arg,
    add_study_arg,
    default_device,
    load_study,
    pick_trial,
    say,
)
from search.errors import UsageError, as_usage_error
from search.paths import writable_file

HELP = DESCRIPTION = "train a trial's configuration for long; test accuracy on it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study_arg(p)
    add_storage_arg(p)
    p.add_argument("--trial", type=int, metavar="N", help="default: the best trial")
    p.add_argument("--epochs", type=int, required=True)
    add_data_dir_arg(p)
    add_device_arg(p)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--save-model", metavar="PATH", help="save the trained weights and spec")
    p.add_argument("--json", action="store_true")


def take_action(args: argparse.Namespace) -> int:
    from model.checkpoint import save_model
    from model.engine import DeviceError, TrainingError, resolve_device
    from search.prepare import load_run_data
    from search.progress import EpochProgress
    from search.retrain import plan, retrain

    if args.save_model is not None:
        writable_file(args.save_model, "--save-model")  # before training, not after
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    config, study, storage = load_study(args)
    trial = pick_trial(study, args.trial)
    p = plan(config, trial, epochs=args.epochs, compile=args.compile)
    with as_usage_error(DeviceError):
        device = resolve_device(args.device or default_device())
    data = load_run_data(config)
    say(
        f"retraining trial {trial.number} ({p.spec.name}) for {args.epochs} epochs on {device}; "
        f"checkpoint {p.checkpoint} (rerun to resume)"
    )
    progress = EpochProgress(total=args.epochs, desc=f"trial {trial.number}")
    try:
        result, record = retrain(
            p, data, device=str(device), storage=storage, on_epoch_end=progress.update
        )
    except TrainingError as e:
        say(f"optuna-search retrain: error: {e}")
        return 1
    finally:
        progress.close()
    if args.save_model:
        assert result.model is not None
        metadata = {"recipe": p.recipe.to_dict(), **dataclasses.asdict(record)}
        save_model(args.save_model, result.model, spec=p.spec.to_dict(), metadata=metadata)
    if args.json:
        print(json.dumps(dataclasses.asdict(record)))
    else:
        print(
            f"trial {trial.number} retrained for {result.epochs} epochs: val accuracy "
            f"{result.val_accuracy:.4f}, test accuracy {result.test_accuracy:.4f} "
            f"({result.seconds:.0f} s on {result.device}); recorded on the trial as 'retrain'"
        )
    return 0
