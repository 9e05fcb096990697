"""``optuna-search train``: train one architecture; validation every epoch, test at the end."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from search.cli.common import add_arch_args, add_device_arg, default_device, say, spec_from_args
from search.errors import UsageError, as_usage_error
from search.flags import add_recipe_args, recipe_from_args
from search.paths import writable_file

HELP = "train one architecture (also the final, long training of a search's best)"
DESCRIPTION = (
    "Train one architecture on CIFAR-10 with the fast GPU-resident engine; evaluates on the "
    "validation split every epoch and on the test set at the end."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_arch_args(p)
    add_recipe_args(p)
    g = p.add_argument_group("data")
    g.add_argument(
        "--data-dir",
        default="data",
        metavar="DIR",
        help="CIFAR-10: cifar-10-batches-py/, train/ + test/ image folders, a .tar.gz "
        "of them, or where to download it (default: ./data)",
    )
    g.add_argument(
        "--dataset",
        default="cifar10",
        metavar="cifar10|synthetic",
        help="synthetic: generated images, for smoke runs and tests",
    )
    g.add_argument(
        "--val-size",
        type=int,
        default=5000,
        help="validation images carved from the training set (default 5000)",
    )
    g.add_argument(
        "--train-subset",
        type=int,
        metavar="N",
        help="train on the first N of a seeded shuffle (quick runs)",
    )
    g.add_argument("--test-subset", type=int, metavar="N", help="evaluate on N test images")
    add_device_arg(p)
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="write a checkpoint every epoch; resume from it if it exists",
    )
    p.add_argument("--save-model", metavar="PATH", help="save the trained weights and spec")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="architecture and recipe exported by 'optuna-search export' (flags override it)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")


def take_action(args: argparse.Namespace) -> int:
    base_recipe: dict[str, Any] = {}
    if args.config:
        from model.spec import spec_from_dict
        from search.results import read_exported

        try:
            arch, base_recipe = read_exported(args.config)
        except (OSError, ValueError) as e:
            raise UsageError(f"--config: {e}") from None
        from_file = args.arch is None and args.blocks is None
        spec = spec_from_dict(arch) if from_file else spec_from_args(args)
    else:
        spec = spec_from_args(args)  # bad architecture flags fail before torch is imported
    with as_usage_error(ValueError, TypeError):
        config = recipe_from_args(args, base_recipe)
    for flag, path in (("--save-model", args.save_model), ("--checkpoint", args.checkpoint)):
        if path is not None:  # before training: a path that fails after hours is bad input
            writable_file(path, flag)
    from model.checkpoint import load_checkpoint, save_model
    from model.data import DataError, load_data
    from model.engine import CheckpointMismatch, DeviceError, TrainingError, resolve_device, train
    from search.progress import EpochProgress

    with as_usage_error(DataError, DeviceError, CheckpointMismatch):
        if args.checkpoint is not None:
            load_checkpoint(args.checkpoint)  # a corrupt one is refused before any work
        device = resolve_device(args.device or default_device())
        data = load_data(
            dataset=args.dataset,
            data_dir=args.data_dir,
            val_size=args.val_size,
            train_subset=args.train_subset,
            test_subset=args.test_subset,
            seed=config.seed,
            progress=sys.stderr.isatty(),  # bars on a terminal; in a log, only the result
        )
    say(
        f"data: {data.source}: {len(data.train)} train, {len(data.val)} val, "
        f"{len(data.test)} test images"
    )
    progress = EpochProgress(total=config.epochs, desc=spec.name)
    try:
        with as_usage_error(CheckpointMismatch):
            result = train(
                spec,
                data,
                config,
                device=device,
                checkpoint=args.checkpoint,
                on_epoch_end=progress.update,
                evaluate_test=True,
            )
    except TrainingError as e:  # diverged, out of memory: the run failed, the input was fine
        say(f"optuna-search train: error: {e}")
        return 1
    finally:
        progress.close()
    if args.save_model:
        assert result.model is not None
        save_model(
            args.save_model,
            result.model,
            spec=spec.to_dict(),
            metadata={
                "recipe": config.to_dict(),
                "val_accuracy": result.val_accuracy,
                "test_accuracy": result.test_accuracy,
            },
        )
    summary = {
        "name": spec.name,
        "spec": spec.to_dict(),
        "recipe": config.to_dict(),
        "params": result.params,
        "device": result.device,
        "data": data.source,
        "train_images": len(data.train),
        "epochs": result.epochs,
        "resumed_from_epoch": result.resumed_from_epoch,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "seconds": round(result.seconds, 3),
        "train_seconds": round(result.train_seconds, 3),
        "images_per_second": round(result.images_per_second, 1),
        "history": [
            {
                "epoch": r.epoch,
                "train_loss": r.train_loss,
                "val_accuracy": r.val_accuracy,
                "seconds": r.seconds,
                "images_per_second": r.images_per_second,
            }
            for r in result.history
        ],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        val = "-" if result.val_accuracy is None else f"{result.val_accuracy:.4f}"
        test = "-" if result.test_accuracy is None else f"{result.test_accuracy:.4f}"
        print(
            f"{spec.name}: {result.params:,} parameters, {result.epochs} epochs on "
            f"{result.device} in {result.seconds:.1f} s ({result.images_per_second:,.0f} "
            f"images/s); val accuracy {val}, test accuracy {test}"
        )
    return 0
