"""The ``optuna-search`` command line.

Each subcommand parses its flags here and calls the module that owns the concept. Heavy
imports (torch, torchvision) happen only inside the commands that train, so ``--help`` and
``params`` answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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


# (flag, recipe field, type, help); defaults are model.recipe.TrainConfig's (the paper's recipe)
_RECIPE_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--epochs", "epochs", int, "default 200"),
    ("--batch-size", "batch_size", int, "default 128"),
    ("--lr", "lr", float, "peak learning rate, default 0.1"),
    ("--momentum", "momentum", float, "default 0.9"),
    ("--weight-decay", "weight_decay", float, "default 5e-4"),
    (
        "--schedule",
        "schedule",
        str,
        "paper (default): cosine stepped per epoch; cosine, linear: per step after warm-up",
    ),
    ("--warmup-epochs", "warmup_epochs", float, "default 0"),
    ("--label-smoothing", "label_smoothing", float, "default 0"),
    ("--ema-decay", "ema_decay", float, "weight EMA, e.g. 0.999 (default 0: off)"),
    ("--crop-padding", "crop_padding", int, "random-crop padding, default 4"),
    ("--cutout", "cutout", int, "cutout square size (default 0: off)"),
    ("--seed", "seed", int, "default 0"),
]


def _add_recipe_args(parser: argparse.ArgumentParser) -> None:
    """Training flags. Unset flags fall back to --config, then to the paper's recipe."""
    g = parser.add_argument_group("recipe (defaults: the paper's 95.95% run)")
    for flag, dest, kind, text in _RECIPE_FLAGS:
        g.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    g.add_argument("--nesterov", action="store_true", default=None)
    g.add_argument("--no-flip", dest="flip", action="store_false", default=None)
    g.add_argument("--tta", action="store_true", default=None, help="flip at evaluation")
    g.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the model (CUDA)"
    )


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


def _recipe_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    """The recipe: the paper's defaults, then ``base`` (an exported config), then the flags."""
    from model.recipe import TrainConfig

    fields = [dest for _, dest, _, _ in _RECIPE_FLAGS] + ["nesterov", "flip", "tta", "compile"]
    values = {**TrainConfig().to_dict(), **(base or {})}
    values.update({f: getattr(args, f) for f in fields if getattr(args, f, None) is not None})
    try:
        return TrainConfig.from_dict(values)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def _cmd_train(args: argparse.Namespace) -> int:
    base_recipe: dict[str, Any] = {}
    if args.config:
        from search.results import read_exported

        try:
            arch, base_recipe = read_exported(args.config)
        except (OSError, ValueError) as e:
            raise UsageError(f"--config: {e}") from None
        if args.arch is None and args.blocks is None:
            from model.spec import spec_from_dict

            spec = spec_from_dict(arch)
        else:
            spec = _spec_from_args(args)
    else:
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

    config = _recipe_from_args(args, base_recipe)
    try:
        device = resolve_device(args.device or default_device())
        data = load_data(
            dataset=args.dataset,
            data_dir=args.data_dir,
            val_size=args.val_size,
            train_subset=args.train_subset,
            test_subset=args.test_subset,
            seed=config.seed,
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
# validate, space: the config and its search space (no torch)


def _quiet_optuna() -> None:
    """Optuna logs each study and trial at INFO; the commands print their own progress."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _load_config(args: argparse.Namespace, config: Any = None) -> Any:
    """The --study config (or ``config``), with the command line's overrides applied."""
    from search.config import ConfigError, load_config

    try:
        config = config or load_config(args.study)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    overrides: dict[str, Any] = {}
    if getattr(args, "n_trials", None) is not None:
        if args.n_trials <= 0:
            raise UsageError(f"--n-trials must be positive, got {args.n_trials}")
        overrides["trials"] = args.n_trials
    if getattr(args, "timeout", None) is not None:
        from search.config import _parse_timeout

        try:
            overrides["timeout"] = _parse_timeout(args.timeout, config.path)
        except ConfigError:
            raise UsageError(
                f"--timeout {args.timeout!r} is not a duration: give seconds or e.g. 90m, 12h"
            ) from None
    if getattr(args, "data_dir", None) is not None:
        overrides["data"] = dataclasses.replace(config.data, data_dir=args.data_dir)
    return dataclasses.replace(config, **overrides) if overrides else config


def _cmd_validate(args: argparse.Namespace) -> int:
    from model.accounting import count_params

    config = _load_config(args)
    names = config.space.param_names()
    training = [n for n in names if n in config.space.training]
    print(f"{config.path}: valid")
    print(
        f"  study {config.name}: {len(names)} searched parameters ({len(names) - len(training)} "
        f"architecture, {len(training)} training)"
    )
    objectives = ", ".join(
        f"{o} ({d})" for o, d in zip(config.objectives, config.directions, strict=True)
    )
    print(f"  objectives: {objectives}")
    macs = f", {config.max_macs:,} MACs" if config.max_macs else ""
    print(f"  budget: {config.max_params:,} parameters{macs}")
    trials = f"{config.trials} trained trials" if config.trials else "no trial count"
    timeout = f", timeout {config.timeout:,.0f} s" if config.timeout else ""
    print(
        f"  {trials}{timeout}; sampler {config.sampler.name}; pruner {config.pruner.name}"
        + (
            f" (epochs {config.pruner.min_epochs}..{config.pruner.max_epochs}, reduction "
            f"{config.pruner.reduction_factor})"
            if config.pruner.name in ("asha", "hyperband")
            else ""
        )
    )
    print(
        f"  data: {config.data.dataset}"
        + (f" from {config.data.data_dir}" if config.data.dataset == "cifar10" else "")
        + f", {config.data.val_size} validation "
        "images"
    )
    for label, params in config.enqueue:
        spec = _enqueued_spec(config, params)
        if spec is None:
            print(f"  enqueued {label}: not a valid architecture (it will be rejected)")
            continue
        n = count_params(spec)
        verdict = "within budget" if n <= config.max_params else "over budget: will be rejected"
        print(f"  enqueued {label}: {spec.name}, {n:,} parameters ({verdict})")
    return 0


def _enqueued_spec(config: Any, params: dict[str, Any]) -> Any:
    """The spec an enqueued trial's parameters make (None if invalid), sampled as a study
    would sample it."""
    import optuna

    _quiet_optuna()
    study = optuna.create_study()
    study.enqueue_trial(params)
    return config.space.sample(study.ask()).spec


def _cmd_space(args: argparse.Namespace) -> int:
    from search.budget import survey

    _quiet_optuna()
    config = _load_config(args)
    if args.sample <= 0:
        raise UsageError(f"--sample must be positive, got {args.sample}")
    s = survey(
        config.space,
        n=args.sample,
        max_params=config.max_params,
        max_macs=config.max_macs,
        seed=args.seed,
    )

    def spread(values: list[int]) -> dict[str, int] | None:
        if not values:
            return None
        v = sorted(values)
        pick = {"min": 0.0, "p10": 0.1, "median": 0.5, "p90": 0.9, "max": 1.0}
        return {k: v[min(len(v) - 1, round(q * (len(v) - 1)))] for k, q in pick.items()}

    out = {
        "study": config.name,
        "samples": s.n,
        "feasible": s.feasible,
        "over_budget": s.over_budget,
        "invalid": s.invalid,
        "feasible_share": s.feasible / s.n,
        "over_budget_share": s.over_budget / s.n,
        "invalid_share": s.invalid / s.n,
        "max_params": config.max_params,
        "params_valid": spread(s.params),
        "params_feasible": spread(s.feasible_params),
        "macs_feasible": spread(s.feasible_macs),
        "seconds": round(s.seconds, 3),
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{config.name}: {s.n} random configurations in {s.seconds:.2f} s")
    print(f"  feasible    {s.feasible:6d}  {s.feasible / s.n:6.1%}")
    print(
        f"  over budget {s.over_budget:6d}  {s.over_budget / s.n:6.1%}  "
        f"(> {config.max_params:,} parameters"
        + (f" or {config.max_macs:,} MACs" if config.max_macs else "")
        + ")"
    )
    print(
        f"  invalid     {s.invalid:6d}  {s.invalid / s.n:6.1%}  (e.g. a pool larger than the "
        "last map, a stride past 1x1)"
    )
    for title, key, unit in (
        ("parameters, feasible", "params_feasible", 1),
        ("parameters, all valid", "params_valid", 1),
        ("MACs/image, feasible", "macs_feasible", 1),
    ):
        d = out[key]
        if d:
            row = "  ".join(f"{k} {v / unit:,.0f}" for k, v in d.items())
            print(f"  {title:<22} {row}")
    return 0


# ---------------------------------------------------------------------------------------------
# run, worker: the search


def _log(prefix: str = "") -> Callable[[str], None]:
    import datetime

    def log(line: str) -> None:
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        print(f"{stamp} {prefix}{line}", flush=True)

    return log


def _check_cpu_time(config: Any, device: str, explicit: bool) -> None:
    """Without a GPU, say so before the first trial, with the expected time per epoch; refuse
    (unless --device cpu was given) when a typical trial would take more than a minute an
    epoch."""
    import statistics

    from model.estimate import epoch_seconds, measure_training_rate
    from search.budget import survey

    if device != "cpu":
        return
    s = survey(config.space, n=300, max_params=config.max_params, max_macs=config.max_macs)
    if not s.feasible_macs:
        return
    rate = measure_training_rate("cpu")
    images = (
        config.data.train_subset
        or (config.data.synthetic_size[0] if config.data.dataset == "synthetic" else 50_000)
        - config.data.val_size
    )
    typical = epoch_seconds(macs=int(statistics.median(s.feasible_macs)), images=images, rate=rate)
    largest = epoch_seconds(macs=max(s.feasible_macs), images=images, rate=rate)
    note = (
        f"no GPU in use: training on the CPU ({rate / 1e9:.0f} GMAC/s measured here); "
        f"expect about {_duration(typical)} per epoch for a typical configuration of this "
        f"space and {_duration(largest)} for the largest ({images:,} images)"
    )
    if typical > 60 and not explicit:
        raise UsageError(note + "; run on a GPU, or pass --device cpu to train on the CPU anyway")
    print(note, file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _config_and_url(args: argparse.Namespace) -> tuple[Any, str]:
    """The validated config and storage URL (flag, environment, config, default)."""
    from search.storage import StorageError, parse_url, resolve_url

    _quiet_optuna()
    config = _load_config(args)
    url = resolve_url(args.storage, config.storage)
    try:
        parse_url(url)
    except StorageError as e:
        raise UsageError(str(e)) from None
    return config, url


def _prepare_run(
    args: argparse.Namespace, given: tuple[Any, str] | None = None
) -> tuple[Any, str, str, Any]:
    """Everything that can fail on bad input, before a study is created or a trial runs:
    the config, the storage URL, the device, the data. Returns (config, url, device, data)."""
    if args.heartbeat_interval < 1 or args.grace_period <= args.heartbeat_interval:
        raise UsageError(
            "--heartbeat-interval must be at least 1 and --grace-period longer than it"
        )
    if args.dry_run is not None and args.dry_run < 0:
        raise UsageError(f"--dry-run must be at least 0 seconds, got {args.dry_run}")
    config, url = given or _config_and_url(args)
    if args.dry_run is not None:  # nothing trains: no device or data needed
        return config, url, "cpu", None
    import torch  # the first command that needs it

    from model.engine import DeviceError, resolve_device

    explicit = args.device is not None
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolve_device(device)
    except DeviceError as e:
        raise UsageError(str(e)) from None
    if not getattr(args, "launched", False):  # the launcher checked it once for all workers
        _check_cpu_time(config, device, explicit)
    data = _load_run_data(config)
    return config, url, device, data


def _load_run_data(config: Any) -> Any:
    from model.data import DataError, load_data

    d = config.data
    try:
        return load_data(
            dataset=d.dataset,
            data_dir=d.data_dir,
            val_size=d.val_size,
            train_subset=d.train_subset,
            test_subset=d.test_subset,
            synthetic_size=d.synthetic_size,
        )
    except DataError as e:
        raise UsageError(str(e)) from None


def _open(url: str) -> Any:
    from search.storage import StorageError, open_storage

    try:
        return open_storage(url)
    except StorageError as e:
        raise UsageError(str(e)) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from search.storage import count_slots, mask
    from search.study import StudyMismatch, open_study

    slots = _slots(args)
    config, url, device, data = _prepare_run(args)
    storage = _open(url)
    try:
        study, created = open_study(config, storage)
    except StudyMismatch as e:
        raise UsageError(str(e)) from None
    held = count_slots(storage, study._study_id)
    total = f"/{config.trials}" if config.trials else ""
    where = f"{len(slots)} workers" if slots else f"device {device}"
    what = (
        f"dry run ({args.dry_run:g} s a trial)"
        if data is None
        else f"data {data.source}, {len(data.train):,} train / {len(data.val):,} val images"
    )
    print(
        f"study {config.name} ({'created' if created else 'resumed'}) in {mask(url)}: "
        f"{held}{total} trained trials so far; {where}; {what}",
        flush=True,
    )
    if not slots:
        code = _work(args, config, url, device, lambda: data)
    else:
        from search.launcher import launch

        os.environ["OPTUNA_SEARCH_STORAGE"] = url  # to the workers, not on their command line
        code = launch(slots, _worker_args(args, config))
        print(f"launcher: workers ended ({'all well' if code == 0 else f'status {code}'})")
    _print_best(study)
    return code


def _slots(args: argparse.Namespace) -> list[Any]:
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
            raise UsageError(
                f"--gpus {','.join(map(str, args.gpus))}: this machine has {count} "
                f"GPU(s) (0..{count - 1}); no GPU {missing[0]}"
            )
        return gpu_slots(args.gpus, args.trials_per_gpu)
    if args.workers is not None:
        return device_slots(args.device or default_device(), args.workers)
    if args.trials_per_gpu > 1:
        raise UsageError("--trials-per-gpu needs --gpus")
    return []


def _worker_args(args: argparse.Namespace, config: Any) -> list[str]:
    """The flags a launched worker needs to run the same study the same way."""
    out = [
        "--study",
        args.study,
        "--heartbeat-interval",
        str(args.heartbeat_interval),
        "--grace-period",
        str(args.grace_period),
    ]
    if config.trials is not None:
        out += ["--n-trials", str(config.trials)]
    if config.timeout is not None:
        out += ["--timeout", str(config.timeout)]
    if args.data_dir:
        out += ["--data-dir", args.data_dir]
    if args.compile:
        out.append("--compile")
    if args.trials_per_gpu > 1:
        out += ["--trials-per-gpu", str(args.trials_per_gpu)]
    if args.dry_run is not None:
        out += ["--dry-run", str(args.dry_run)]
    return out


def _work(
    args: argparse.Namespace,
    config: Any,
    url: str,
    device: str,
    load_data: Callable[[], Any],
    prefix: str = "",
) -> int:
    """Run one worker in this process; its exit status."""
    from search.worker import WorkerOptions, run_worker

    options = WorkerOptions(
        storage_url=url,
        device=device,
        timeout=config.timeout,
        compile=bool(args.compile),
        worker=getattr(args, "worker_index", 0),
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        share_gpu=args.trials_per_gpu > 1,
        dry_run=args.dry_run,
    )
    summary = run_worker(config, options, load_data=load_data, log=_log(prefix))
    print(f"{prefix}done: {summary.line()}; {summary.stop_reason}", flush=True)
    if summary.signal is not None:
        import signal

        return 128 + signal.Signals[summary.signal].value
    return 0


def _stored_config(args: argparse.Namespace) -> tuple[Any, str] | None:
    """On a host without the study's config file: the config stored with the study (a worker
    joining from another host needs only the storage URL and the study name)."""
    from search.config import ConfigError, find_config

    try:
        find_config(args.study)
        return None
    except ConfigError:
        pass
    import optuna

    from search.config import parse_config
    from search.storage import StorageError, parse_url, resolve_url
    from search.study import stored_config, study_exists

    url = resolve_url(args.storage)
    try:
        parse_url(url)
    except StorageError as e:
        raise UsageError(str(e)) from None
    storage = _open(url)
    if not study_exists(storage, args.study):
        return None  # the usual "no such study config" error follows
    _quiet_optuna()
    raw = stored_config(optuna.load_study(study_name=args.study, storage=storage))
    from pathlib import Path

    config = parse_config(raw, path=Path(f"{args.study}.yaml (stored in the study)"))
    return _load_config(args, config), url


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.gpu is not None:  # before torch is imported: this process sees only that GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
        args.device = args.device or "cuda"
    config, url, device, data = _prepare_run(args, _stored_config(args))
    from search.study import StudyMismatch, open_study

    try:
        open_study(config, _open(url))  # creates the study if this worker is the first
    except StudyMismatch as e:
        raise UsageError(str(e)) from None
    return _work(args, config, url, device, lambda: data)


def _print_best(study: Any) -> None:
    from search.results import best_trials

    best = best_trials(study)
    if not best:
        print("no completed feasible trial yet")
    elif len(study.directions) == 1:
        t = best[0]
        print(
            f"best: trial {t.number}, {t.user_attrs.get('arch')}, "
            f"{t.user_attrs.get('params', 0):,} params, val accuracy {t.values[0]:.4f}; "
            f"see: optuna-search best --study {study.study_name}"
        )
    else:
        print(
            f"Pareto front: {len(best)} trials; see: optuna-search best --study {study.study_name}"
        )


# ---------------------------------------------------------------------------------------------
# best, export, retrain: what a study found


def _load_study(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(config, study, storage) of an existing study; a missing study is a usage error."""
    import optuna

    from search.storage import mask
    from search.study import study_exists

    config, url = _config_and_url(args)
    storage = _open(url)
    if not study_exists(storage, config.name):
        raise UsageError(
            f"no study {config.name!r} in {mask(url)}: run "
            f"'optuna-search run --study {args.study}' first"
        )
    return config, optuna.load_study(study_name=config.name, storage=storage), storage


def _cmd_best(args: argparse.Namespace) -> int:
    from search.results import best_trials, describe

    config, study, _ = _load_study(args)
    data = dataclasses.asdict(config.data)
    best = [describe(t, data=data) for t in best_trials(study)]
    if args.json:
        print(
            json.dumps({"study": config.name, "objectives": list(config.objectives), "best": best})
        )
        return 0 if best else 1
    if not best:
        print(f"study {config.name}: no completed feasible trial yet", file=sys.stderr)
        return 1
    title = "best trial" if len(best) == 1 else f"Pareto front ({len(best)} trials)"
    print(f"study {config.name}: {title}")
    for b in best:
        values = ", ".join(
            f"{o} {v:,.4g}" for o, v in zip(config.objectives, b["values"], strict=True)
        )
        print(
            f"\ntrial {b['trial']}: {b['arch']}, {b['params']:,} params, "
            f"{b['macs'] / 1e6:,.1f} M MACs; {values} after {b['epochs_trained']} epochs"
        )
        print(f"  architecture: {json.dumps(b['spec'])}")
        print(f"  recipe: {json.dumps(b['recipe'])}")
        if b.get("retrain"):
            r = b["retrain"]
            print(f"  retrained: {r['epochs']} epochs, test accuracy {r['test_accuracy']:.4f}")
        print(f"  retrain: {b['train_command']}")
    return 0


def _pick_trial(study: Any, number: int | None) -> Any:
    from search.results import best_trials

    if number is None:
        best = best_trials(study)
        if not best:
            raise UsageError(f"study {study.study_name} has no completed feasible trial yet")
        return best[0]
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise UsageError(
            f"study {study.study_name} has no trial {number} (trials 0..{len(trials) - 1})"
        )
    if "spec" not in match[0].user_attrs:
        raise UsageError(
            f"trial {number} never trained ({match[0].user_attrs.get('reason', '')})".replace(
                " ()", ""
            )
        )
    return match[0]


def _cmd_export(args: argparse.Namespace) -> int:
    from search.results import export_config

    config, study, _ = _load_study(args)
    trial = _pick_trial(study, args.trial)
    export_config(trial, config.name, args.output)
    print(
        f"wrote {args.output}: trial {trial.number}, {trial.user_attrs.get('arch')}; train it "
        f"with: optuna-search train --config {args.output} --epochs N"
    )
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    import datetime
    from pathlib import Path

    from model.checkpoint import save_model
    from model.engine import DeviceError, TrainingError, resolve_device, train
    from model.recipe import TrainConfig
    from model.spec import spec_from_dict
    from search.progress import EpochProgress
    from search.storage import set_finished_trial_user_attr

    config, study, storage = _load_study(args)
    trial = _pick_trial(study, args.trial)
    spec = spec_from_dict(trial.user_attrs["spec"])
    recipe = {**trial.user_attrs["recipe"], "epochs": args.epochs}
    if args.compile:
        recipe["compile"] = True
    try:
        train_config = TrainConfig.from_dict(recipe)
        device = resolve_device(args.device or default_device())
    except (ValueError, DeviceError) as e:
        raise UsageError(str(e)) from None
    data = _load_run_data(config)
    checkpoint = Path(config.checkpoints) / config.name / f"retrain-{trial.number}-{args.epochs}.pt"
    print(
        f"retraining trial {trial.number} ({spec.name}) for {args.epochs} epochs on {device}; "
        f"checkpoint {checkpoint} (rerun to resume)",
        file=sys.stderr,
    )
    progress = EpochProgress(total=args.epochs, desc=f"trial {trial.number}")
    try:
        result = train(
            spec,
            data,
            train_config,
            device=device,
            checkpoint=checkpoint,
            on_epoch_end=progress.update,
            evaluate_test=True,
        )
    except TrainingError as e:
        print(f"optuna-search retrain: error: {e}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    record = {
        "epochs": result.epochs,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "seconds": round(result.seconds, 1),
        "device": result.device,
        "date": datetime.date.today().isoformat(),
    }
    set_finished_trial_user_attr(storage, trial._trial_id, "retrain", record)
    if args.save_model:
        save_model(
            args.save_model,
            result.model,
            spec=spec.to_dict(),
            metadata={"recipe": train_config.to_dict(), **record},
        )
    checkpoint.unlink(missing_ok=True)
    if args.json:
        print(json.dumps(record))
    else:
        print(
            f"trial {trial.number} retrained for {result.epochs} epochs: val accuracy "
            f"{result.val_accuracy:.4f}, test accuracy {result.test_accuracy:.4f} "
            f"({result.seconds:.0f} s on {result.device}); recorded on the trial as 'retrain'"
        )
    return 0


# ---------------------------------------------------------------------------------------------
# report, dashboard


def _cmd_report(args: argparse.Namespace) -> int:
    from search.report import write_report

    config, study, _ = _load_study(args)
    if args.format not in ("html", "png"):
        raise UsageError(f"--format {args.format!r}: use html or png")
    written = write_report(study, config, args.output, fmt=args.format, top=args.top)
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    import socket

    import optuna
    from optuna_dashboard import run_server

    from search.artifacts import artifact_store
    from search.storage import StorageError, mask, parse_url, resolve_url

    _quiet_optuna()
    config = _load_config(args) if args.study else None
    url = resolve_url(args.storage, config.storage if config else None)
    try:
        parsed = parse_url(url)
    except StorageError as e:
        raise UsageError(str(e)) from None
    folder = args.artifact_dir or (config.artifacts if config else "artifacts")
    with socket.socket() as probe:  # a clear error before the server prints a traceback
        try:
            probe.bind((args.host, args.port))
        except OSError as e:
            raise UsageError(
                f"cannot listen on {args.host}:{args.port} ({e.strerror}): "
                "choose another --port or --host"
            ) from None
    try:
        # Optuna's plain RDBStorage: the dashboard's own writes (notes, attrs) are immediate.
        storage = optuna.storages.RDBStorage(
            parsed.render_as_string(hide_password=False),
            engine_kwargs={"pool_pre_ping": True} if parsed.get_backend_name() != "sqlite" else {},
        )
    except Exception as e:
        raise UsageError(f"cannot open storage {mask(url)!r}: {str(e).splitlines()[0]}") from None
    print(
        f"optuna-dashboard on http://{args.host}:{args.port}/ (storage {mask(url)}, "
        f"artifacts {folder}); Ctrl-C to stop",
        flush=True,
    )
    run_server(storage, host=args.host, port=args.port, artifact_store=artifact_store(folder))
    return 0


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
    p.add_argument(
        "--config",
        metavar="FILE",
        help="architecture and recipe exported by 'optuna-search export' (flags override it)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(handler=_cmd_train)

    def study_parser(name: str, help_text: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--study",
            required=True,
            metavar="NAME|FILE",
            help="a config in study_configs/ by name, or a YAML file",
        )
        return p

    def heartbeat_args(p: argparse.ArgumentParser) -> None:
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

    def storage_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--storage",
            metavar="URL",
            help="SQLAlchemy URL (default: $OPTUNA_SEARCH_STORAGE, the config's "
            "storage:, else sqlite:///optuna-search.db)",
        )

    def trial_args(p: argparse.ArgumentParser) -> None:
        """The flags of both commands that run trials: ``run`` and ``worker``."""
        storage_arg(p)
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
        p.add_argument("--data-dir", metavar="DIR", help="override the config's data_dir")
        p.add_argument("--device", metavar="cpu|cuda|cuda:N", help="default: cuda if present")
        p.add_argument("--compile", action="store_true", help="torch.compile each trial's model")
        heartbeat_args(p)

    p = study_parser("validate", "check a study config without touching storage (no torch)")
    p.set_defaults(handler=_cmd_validate)

    p = study_parser("space", "sample a study's space without training: how much fits the budget")
    p.add_argument("--sample", type=int, default=1000, metavar="N", help="default 1000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_space)

    p = study_parser("run", "create or resume a study and run its trials (the main job)")
    trial_args(p)
    p.add_argument(
        "--gpus",
        type=_int_list,
        metavar="0,1,..",
        help="one worker process per listed GPU, each seeing only its GPU",
    )
    p.add_argument(
        "--trials-per-gpu",
        type=int,
        default=1,
        metavar="K",
        help="K workers per GPU (GPU memory is reserved per trial; default 1)",
    )
    p.add_argument(
        "--workers", type=int, metavar="K", help="K worker processes on --device (e.g. the CPU)"
    )
    p.set_defaults(handler=_cmd_run)

    p = study_parser("worker", "join a study as one more worker, from any host")
    trial_args(p)
    p.add_argument("--gpu", type=int, metavar="N", help="use only GPU N (CUDA_VISIBLE_DEVICES)")
    p.add_argument(
        "--trials-per-gpu",
        type=int,
        default=1,
        metavar="K",
        help="workers sharing this GPU: reserve GPU memory per trial",
    )
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(handler=_cmd_worker)

    p = study_parser("best", "the best trial (or Pareto set) with its retrain command")
    storage_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_best)

    p = study_parser("export", "write a trial's architecture and recipe as YAML (train --config)")
    storage_arg(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--trial", type=int, metavar="N", help="default: the best trial")
    p.set_defaults(handler=_cmd_export)

    p = study_parser("retrain", "train a trial's configuration for long; test accuracy on it")
    storage_arg(p)
    p.add_argument("--trial", type=int, metavar="N", help="default: the best trial")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--data-dir", metavar="DIR", help="override the config's data_dir")
    p.add_argument("--device", metavar="cpu|cuda|cuda:N", help="default: cuda if present")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--save-model", metavar="PATH", help="save the trained weights and spec")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_retrain)

    p = study_parser("report", "a self-contained HTML report of a study (plotly), or PNGs")
    storage_arg(p)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="the HTML file (--format png: a folder for one PNG per figure)",
    )
    p.add_argument("--format", default="html", metavar="html|png")
    p.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="trials in the table and learning curves (default 10)",
    )
    p.set_defaults(handler=_cmd_report)

    p = commands.add_parser(
        "dashboard",
        help="optuna-dashboard on the study's storage, with its artifacts",
        description="Start optuna-dashboard on the storage (and artifact folder) of a study.",
    )
    p.add_argument(
        "--study",
        metavar="NAME|FILE",
        help="take the storage and artifact folder from this study config",
    )
    storage_arg(p)
    p.add_argument(
        "--artifact-dir", metavar="DIR", help="default: the config's artifacts:, else ./artifacts"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="default 127.0.0.1 (0.0.0.0 exposes it to the network)"
    )
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(handler=_cmd_dashboard)
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
    # Run through the imported module, so that its exceptions (UsageError) are one class
    # whether raised here or by the modules it calls.
    from search.cli import run as _run

    _run()
