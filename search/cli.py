"""The ``optuna-search`` command line.

Each subcommand parses its flags here and calls the module that owns the concept. Heavy
imports (torch, torchvision) happen only inside the commands that train, so ``--help`` and
``params`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from model.spec import ResNetSpec, SpecError, make_spec

DEFAULT_MAX_PARAMS = 5_000_000


class UsageError(Exception):
    """Bad user input found after parsing; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the whole usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 4,5,3"
        ) from None
    return values


def _pool(text: str) -> int | str:
    if text == "global":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a pool size: give an integer or 'global'"
        ) from None


def _add_arch_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("architecture (a named one, or the family's parameters)")
    group.add_argument("--arch", metavar="NAME", help="a named architecture, e.g. ResNet26-B453")
    group.add_argument("--blocks", type=_int_list, metavar="B1,B2,..", help="blocks per layer")
    group.add_argument("--channels", type=_int_list, metavar="C1,C2,..", help="width per layer")
    group.add_argument(
        "--strides", type=_int_list, metavar="S1,..", help="default: 1 then 2 for each later layer"
    )
    group.add_argument(
        "--kernel", type=_int_list, default=[3], metavar="F", help="conv kernel, one or per layer"
    )
    group.add_argument(
        "--shortcut-kernel", type=_int_list, default=[1], metavar="K", help="one or per layer"
    )
    group.add_argument("--pool", type=_pool, default=4, metavar="P|global", help="default: 4")
    group.add_argument("--stem-channels", type=int, default=64, metavar="N", help="default: 64")
    group.add_argument("--num-classes", type=int, default=10, metavar="N", help="default: 10")


def _spec_from_args(args: argparse.Namespace) -> ResNetSpec:
    from model.architectures import UnknownArchitectureError, architecture

    if args.arch is not None:
        if args.blocks is not None or args.channels is not None:
            raise UsageError("give either --arch or --blocks/--channels, not both")
        try:
            return architecture(args.arch)
        except UnknownArchitectureError as e:
            raise UsageError(str(e)) from None
    if args.blocks is None or args.channels is None:
        raise UsageError("give --arch NAME, or both --blocks and --channels")
    return make_spec(
        blocks=args.blocks,
        channels=args.channels,
        kernels=args.kernel,
        shortcut_kernels=args.shortcut_kernel,
        strides=args.strides,
        pool=args.pool,
        stem_channels=args.stem_channels,
        num_classes=args.num_classes,
    )


# ---------------------------------------------------------------------------------------------
# params


def _cmd_params(args: argparse.Namespace) -> int:
    from model.accounting import breakdown
    from model.architectures import paper_name

    if args.paper:
        print(_paper_table())
        return 0
    if args.max_params <= 0:
        raise UsageError(f"--max-params must be positive, got {args.max_params}")
    spec = _spec_from_args(args)
    parts = breakdown(spec)
    params = sum(p.params for p in parts)
    macs = sum(p.macs for p in parts)
    within = params <= args.max_params
    name = paper_name(spec) or spec.name
    if args.json:
        out = {
            "name": name,
            "family_name": spec.name,
            "params": params,
            "macs": macs,
            "max_params": args.max_params,
            "within_budget": within,
            "spec": spec.to_dict(),
            "map_sizes": list(spec.map_sizes),
            "parts": [
                {"name": p.name, "map_size": p.map_size, "params": p.params, "macs": p.macs}
                for p in parts
            ],
        }
        print(json.dumps(out))
        return 0
    print(f"{name}" + (f"  ({spec.name})" if name != spec.name else ""))
    print(f"  {'part':<8} {'map':>7} {'params':>12} {'MACs':>14}")
    for p in parts:
        side = f"{p.map_size}x{p.map_size}"
        print(f"  {p.name:<8} {side:>7} {p.params:>12,} {p.macs:>14,}")
    print(f"  {'total':<8} {'':>7} {params:>12,} {macs:>14,}")
    print(
        f"  blocks {list(spec.blocks)}  channels {list(spec.channels)}  kernels "
        f"{list(spec.kernels)}  shortcut {list(spec.shortcut_kernels)}  strides "
        f"{list(spec.strides)}  pool {spec.pool}"
    )
    margin = args.max_params - params
    verdict = (
        f"within the {args.max_params:,} budget ({margin:,} to spare)"
        if within
        else f"OVER the {args.max_params:,} budget by {-margin:,}"
    )
    print(f"  {params:,} parameters, {macs / 1e6:,.1f} M MACs per 32x32 image: {verdict}")
    return 0


def _paper_table() -> str:
    from model.accounting import count_params
    from model.architectures import PAPER_TABLES, architecture

    header = (
        f"{'table':<8} {'paper name':<18} {'printed B':<10} {'printed C':<14} "
        f"{'printed':>11} {'ours':>11}  {'match':<5} our architecture"
    )
    lines = [header, "-" * len(header)]
    notes = []
    for row in PAPER_TABLES:
        spec = architecture(row.architecture)
        ours = count_params(spec)
        printed = f"{row.printed_params:,}" if row.printed_params is not None else "-"
        match = (
            "-" if row.printed_params is None else ("yes" if ours == row.printed_params else "NO")
        )
        mark = ""
        if row.note:
            notes.append(row.note)
            mark = f" [{len(notes)}]"
        lines.append(
            f"{row.table:<8} {row.printed_name:<18} {row.printed_blocks:<10} "
            f"{row.printed_channels:<14} {printed:>11} {ours:>11,}  {match:<5} "
            f"{row.architecture} = {spec.name}{mark}"
        )
    lines.append("")
    lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    lines.append(
        "Strides are the code's (the text never gives them): 4 layers [1,2,2,2], "
        "3 layers [1,2,4], 2 layers [2,4]."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# train


def _add_recipe_args(parser: argparse.ArgumentParser) -> None:
    """Training flags; defaults are the paper's recipe (model.engine.TrainConfig)."""
    g = parser.add_argument_group("recipe (defaults: the paper's 95.95% run)")
    g.add_argument("--epochs", type=int, default=200)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--nesterov", action="store_true")
    g.add_argument("--weight-decay", type=float, default=5e-4)
    g.add_argument(
        "--schedule",
        default="paper",
        metavar="cosine|linear|paper",
        help="paper: cosine stepped per epoch; cosine/linear: per step after warm-up",
    )
    g.add_argument("--warmup-epochs", type=float, default=0.0)
    g.add_argument("--label-smoothing", type=float, default=0.0)
    g.add_argument("--ema-decay", type=float, default=0.0, help="weight EMA (0: off)")
    g.add_argument("--crop-padding", type=int, default=4)
    g.add_argument("--no-flip", dest="flip", action="store_false")
    g.add_argument("--cutout", type=int, default=0, metavar="SIZE")
    g.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    g.add_argument("--seed", type=int, default=0)


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
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


def _recipe_from_args(args: argparse.Namespace) -> Any:
    from model.recipe import TrainConfig

    try:
        return TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            momentum=args.momentum,
            nesterov=args.nesterov,
            weight_decay=args.weight_decay,
            schedule=args.schedule,
            warmup_epochs=args.warmup_epochs,
            label_smoothing=args.label_smoothing,
            ema_decay=args.ema_decay,
            crop_padding=args.crop_padding,
            flip=args.flip,
            cutout=args.cutout,
            tta=args.tta,
            compile=args.compile,
            seed=args.seed,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None


def _cmd_train(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)  # bad architecture flags fail before torch is imported
    from model.checkpoint import save_model
    from model.data import DataError, load_data
    from model.engine import (
        CheckpointMismatch,
        DeviceError,
        TrainingError,
        resolve_device,
        train,
    )
    from search.progress import EpochProgress

    config = _recipe_from_args(args)
    try:
        device = resolve_device(args.device or default_device())
        data = load_data(
            dataset=args.dataset,
            data_dir=args.data_dir,
            val_size=args.val_size,
            train_subset=args.train_subset,
            test_subset=args.test_subset,
            seed=args.seed,
        )
    except (DataError, DeviceError) as e:
        raise UsageError(str(e)) from None
    print(
        f"data: {data.source}: {len(data.train)} train, {len(data.val)} val, "
        f"{len(data.test)} test images",
        file=sys.stderr,
    )
    progress = EpochProgress(total=config.epochs, desc=spec.name)
    try:
        result = train(
            spec,
            data,
            config,
            device=device,
            checkpoint=args.checkpoint,
            on_epoch_end=progress.update,
            evaluate_test=True,
        )
    except CheckpointMismatch as e:
        raise UsageError(str(e)) from None
    except TrainingError as e:  # diverged, out of memory: the run failed, the input was fine
        print(f"optuna-search train: error: {e}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    if args.save_model:
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
        print(
            f"{spec.name}: {result.params:,} parameters, {result.epochs} epochs on "
            f"{result.device} in {result.seconds:.1f} s ({result.images_per_second:,.0f} "
            f"images/s); val accuracy {val}, test accuracy {result.test_accuracy:.4f}"
        )
    return 0


def default_device() -> str:
    """cuda when a GPU is present, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="optuna-search",
        description="Hyperparameter and architecture search for small ResNets on CIFAR-10.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    p = commands.add_parser(
        "params",
        help="parameter and MAC accounting of one architecture (instant, no torch)",
        description="Exact parameter count and MACs of one architecture, without building it.",
    )
    _add_arch_args(p)
    p.add_argument(
        "--max-params",
        type=int,
        default=DEFAULT_MAX_PARAMS,
        metavar="N",
        help="budget to check against (default: 5,000,000)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--paper", action="store_true", help="print the paper's parameter tables beside our counts"
    )
    p.set_defaults(handler=_cmd_params)

    p = commands.add_parser(
        "train",
        help="train one architecture (also the final, long training of a search's best)",
        description="Train one architecture on CIFAR-10 with the fast GPU-resident engine; "
        "evaluates on the validation split every epoch and on the test set at the end.",
    )
    _add_arch_args(p)
    _add_recipe_args(p)
    _add_data_args(p)
    p.add_argument("--device", metavar="cpu|cuda|cuda:N", help="default: cuda if present")
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="write a checkpoint every epoch; resume from it if it exists",
    )
    p.add_argument("--save-model", metavar="PATH", help="save the trained weights and spec")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(handler=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (UsageError, SpecError) as e:
        print(f"optuna-search {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"optuna-search {args.command}: interrupted", file=sys.stderr)
        return 130


def run(argv: Sequence[str] | None = None) -> Any:
    """Console-script entry point."""
    sys.exit(main(argv))


if __name__ == "__main__":
    run()
