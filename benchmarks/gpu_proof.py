"""The decisions and the summary of ``benchmarks/gpu_proof.sh``, one subcommand each.

The script runs the phases (engine, search, retrain, reference, report); this module decides
what the script cannot know in advance, from the project's own estimates and records, and
assembles what the phases measured:

    data STUDY --data-dir D       load the study's data once (the first load converts the
                                  images and caches them; every later phase reads the cache)
    workers STUDY --device D      the ``run`` flags: ``--gpus 0 --trials-per-gpu K``, K from
                                  the memory estimate of the space's largest trial (the same
                                  estimate and ledger capacity the workers reserve with)
    data-flags STUDY              the ``train`` data flags that give the study's split
    final-plan OUT --study S --seconds T --startup U
                                  epochs for the retrain and the reference (the same number
                                  for both), from the best trial's measured seconds an epoch
                                  and the engine's batch-128 figure, and the retrain's budget
    summary OUT --study S --elapsed T
                                  OUT/summary.json and the markdown table (printed)

Every figure of the search is read back from the study's storage through ``search.record``
(``TrialRecord``, ``status``) and ``search.results``: no attr key is spelled here.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from search.config import StudyConfig

MAX_TRIALS_PER_GPU = 4
"""The most trials per GPU, whatever the memory allows (a choice, not yet a measurement): more
concurrent trials slow each other down once the GPU is busy, and TPE would sample most of a
16-trial study blind."""
MARGIN = 1.25
"""Epoch-time estimates are multiplied by this when sizing the final trainings."""
MAX_EPOCHS = 200
"""The paper's recipe length: the final trainings never run longer."""
DB_NAME = "proof.db"


def storage_url(out: Path) -> str:
    return f"sqlite:///{out / DB_NAME}"


def load_config(study: str) -> StudyConfig:
    from search.config import load_config as load

    return load(study)


def open_study(out: Path, name: str) -> optuna.Study | None:
    """The proof's study (None when the search never created it)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not (out / DB_NAME).exists():
        return None
    try:
        return optuna.load_study(study_name=name, storage=storage_url(out))
    except KeyError:
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def last_json_line(path: Path) -> dict[str, Any] | None:
    """The last line of a log that is a JSON object (``train --json`` prints one at the end)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


# --- workers ------------------------------------------------------------------------------


def plan_workers(config: StudyConfig, device: str, *, samples: int = 500) -> dict[str, Any]:
    """Trials per GPU from the memory estimate: the largest feasible trial of a random sample
    of the space (the estimate each trial reserves, ``search.gpu.TrialMemory``: its training
    memory at its batch size, the data on the device, the process's CUDA context), against the
    capacity of the GPU's memory ledger."""
    import optuna

    from model.estimate import data_memory_bytes, training_memory_bytes
    from model.recipe import TrainConfig
    from search.cpu_time import training_images
    from search.gpu import CONTEXT_BYTES

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    data = data_memory_bytes(train_images=training_images(config), val_images=config.data.val_size)
    worst, worst_name = 0, None
    for _ in range(samples):
        candidate = config.space.sample(study.ask())
        if candidate.spec is None or not config.budget.judge_candidate(candidate).feasible:
            continue
        batch = int(candidate.recipe.get("batch_size", TrainConfig().batch_size))
        need = training_memory_bytes(candidate.spec, batch_size=batch) + data + CONTEXT_BYTES
        if need > worst:
            worst, worst_name = need, f"{candidate.spec.name} at batch {batch}"
    plan: dict[str, Any] = {
        "device": device,
        "largest_trial_gib": round(worst / 2**30, 2),
        "largest_trial": worst_name,
    }
    if device.startswith("cuda"):
        from search.gpu import cuda_ledger

        capacity = cuda_ledger().capacity
        fits = max(1, capacity // max(worst, 1))
        k = min(MAX_TRIALS_PER_GPU, fits)
        plan.update(capacity_gib=round(capacity / 2**30, 1), fits=fits, trials_per_gpu=k)
        plan["flags"] = ["--gpus", "0", "--trials-per-gpu", str(k)]
    else:
        k = max(1, min(2, (os.cpu_count() or 1) // 2))
        plan.update(workers=k, flags=["--device", "cpu", "--workers", str(k)])
    return plan


# --- the final trainings ------------------------------------------------------------------


def data_flags(config: StudyConfig) -> list[str]:
    """``optuna-search train`` flags for the study's data split (same seed, same split)."""
    d = config.data
    if d.dataset != "cifar10":
        raise SystemExit(f"{config.name}: the proof needs CIFAR-10 data, not {d.dataset}")
    flags = ["--val-size", str(d.val_size)]
    if d.train_subset is not None:
        flags += ["--train-subset", str(d.train_subset)]
    if d.test_subset is not None:
        flags += ["--test-subset", str(d.test_subset)]
    return flags


def engine_rate(engine: dict[str, Any] | None, batch: int) -> float | None:
    """Images/s the engine measured at ``batch`` (eager), if it did."""
    for row in (engine or {}).get("engine", []):
        if row.get("batch") == batch and not row.get("compile") and row.get("images_per_second"):
            return float(row["images_per_second"])
    return None


def plan_final(
    study: optuna.Study | None,
    config: StudyConfig,
    engine: dict[str, Any] | None,
    *,
    seconds: float,
    startup: float,
    max_epochs: int = MAX_EPOCHS,
) -> dict[str, Any]:
    """How many epochs (at most ``max_epochs``) the retrain and the reference can both run in
    ``seconds``.

    The best trial's wall seconds an epoch in the search (evaluation, model building and the
    first epoch's autotuning included; measured while other trials shared the GPU, so it is an
    upper bound for a run alone), and the reference's from the engine's batch-128 figure (the
    paper's batch). Each of the two runs also pays ``startup`` (imports, CUDA, the data).
    """
    from search.cpu_time import training_images
    from search.record import TrialRecord
    from search.results import best_trials

    best = best_trials(study) if study is not None else []
    per_epoch = 0.0
    trial = None
    if best:
        trial = best[0].number
        r = TrialRecord.of(best[0])
        if r.train_seconds and r.epochs_trained:
            per_epoch = r.train_seconds / r.epochs_trained
        per_epoch = max(per_epoch, r.epoch_seconds or 0.0)
    images = training_images(config)
    rate = engine_rate(engine, 128)
    # Training, plus a forward pass over the validation split (a third of a step an image);
    # without an engine figure at batch 128, the paper's batch is about 3x slower than 512.
    reference = (images + config.data.val_size / 3) / rate if rate else 3 * per_epoch
    each = MARGIN * (per_epoch + reference)
    runs = 2 if best else 1
    epochs = math.floor((seconds - runs * startup) / each) if each > 0 else 1
    epochs = max(1, min(max_epochs, epochs))
    slack = max(0.0, seconds - runs * startup - epochs * each)
    retrain_budget = math.ceil(startup + MARGIN * epochs * per_epoch + slack / 2) if best else 0
    return {
        "trial": trial,
        "epochs": epochs,
        "seconds": round(seconds),
        "retrain_epoch_seconds": round(per_epoch, 3),
        "reference_epoch_seconds": round(reference, 3),
        "retrain_budget": retrain_budget,
    }


# --- the summary --------------------------------------------------------------------------


def search_figures(study: optuna.Study | None) -> dict[str, Any]:
    """Counts and the best trial, from the storage."""
    from search.record import FAILED, TRAINED, Outcome, TrialRecord, status
    from search.results import best_trials

    trials = study.get_trials(deepcopy=False) if study is not None else []
    outcomes = collections.Counter(status(t) for t in trials)
    out: dict[str, Any] = {
        "trials": len(trials),
        "trained": sum(outcomes[o] for o in TRAINED),
        "completed": outcomes[Outcome.COMPLETED],
        "pruned": outcomes[Outcome.PRUNED],
        "rejected": outcomes[Outcome.REJECTED],
        "failed_or_interrupted": sum(outcomes[o] for o in FAILED),
        "waiting": outcomes[Outcome.WAITING],
        "best": None,
    }
    best = best_trials(study) if study is not None else []
    if best:
        t = best[0]
        r = TrialRecord.of(t)
        out["best"] = {
            "trial": t.number,
            "arch": r.arch,
            "params": r.params,
            "val_accuracy": (t.values or [None])[0],
            "epochs": r.epochs_trained,
            "epoch_seconds": r.epoch_seconds,
            "recipe": r.recipe,
            "retrain": None if r.retrain is None else dataclasses.asdict(r.retrain),
        }
    return out


def read_phases(out: Path) -> dict[str, dict[str, Any]]:
    phases: dict[str, dict[str, Any]] = {}
    try:
        lines = (out / "phases.tsv").read_text().splitlines()
    except OSError:
        return phases
    for line in lines:
        name, seconds, state = line.split("\t", 2)
        phases[name] = {"seconds": int(seconds), "status": state}
    return phases


def pct(value: object) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "-"


def num(value: object, fmt: str = ",.0f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


def engine_table(engine: dict[str, Any] | None) -> list[str]:
    if not engine:
        return ["(no engine figures: the engine phase measured nothing)"]
    ref = engine.get("reference")
    lines = [
        "| loop | batch | images/s | ratio to reference | MFU (bf16 peak) | epoch seconds |",
        "|---|---|---|---|---|---|",
        f"| reference (paper-style: PIL, DataLoader, fp32) | 128 | {num(ref)} | 1.0x | - | - |",
    ]
    rows = sorted(engine.get("engine", []), key=lambda r: (bool(r.get("compile")), r["batch"]))
    for row in rows:
        way = "engine, `torch.compile`" if row.get("compile") else "engine, eager"
        if "skipped" in row:
            lines.append(f"| {way} | {row['batch']} | skipped ({row['skipped']}) | - | - | - |")
            continue
        ips = row["images_per_second"]
        ratio = f"{ips / ref:.1f}x" if ref else "-"
        mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
        epochs = ", ".join(f"{s:.2f}" for s in row.get("epoch_seconds", []))
        lines.append(f"| {way} | {row['batch']} | {num(ips)} | {ratio} | {mfu} | {epochs} |")
    return lines


def build_table(
    *,
    config: StudyConfig,
    engine: dict[str, Any] | None,
    workers: dict[str, Any] | None,
    search: dict[str, Any],
    reference: dict[str, Any] | None,
    phases: dict[str, dict[str, Any]],
    elapsed: float,
    tiny: bool,
) -> str:
    device = (engine or {}).get("device") or (workers or {}).get("device", "?")
    spent = ", ".join(f"{n} {p['seconds']} s" for n, p in phases.items())
    mode = " (**--tiny, CPU: not GPU figures**)" if tiny else ""
    lines = [
        f"GPU proof{mode}: {device}, {datetime.date.today()}, {elapsed / 60:.1f} min in all "
        f"({spent})",
        "",
    ]
    if engine:
        lines.append(
            f"**1. Engine against the paper-style loop**, same run: {engine.get('arch')}, "
            f"{num(engine.get('macs', 0) / 1e6, ',.1f')} M MACs, "
            f"{num(engine.get('train_images'))} training images"
        )
    else:
        lines.append("**1. Engine against the paper-style loop**")
    lines[-1] += f", {phases.get('engine', {}).get('status', 'not run')}"
    lines += ["", *engine_table(engine), ""]

    w = workers or {}
    how = (
        f"{w['trials_per_gpu']} trials per GPU (largest trial {w['largest_trial_gib']} GiB "
        f"estimated, {w['capacity_gib']} GiB in the ledger)"
        if "trials_per_gpu" in w
        else f"{w.get('workers', '?')} worker process(es) on the CPU"
    )
    lines += [
        f"**2. Search**: `{config.name}` on the images of DATA_DIR, {how}, "
        f"{phases.get('search', {}).get('status', '?')}",
        "",
        "| trained | completed | pruned | rejected | failed or interrupted | wall | best val "
        "accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    best = search.get("best") or {}
    best_text = (
        f"**{pct(best['val_accuracy'])}** (trial {best['trial']}, {best['arch']}, "
        f"{num(best['params'])} params, {best['epochs']} epochs)"
        if best
        else "- (no completed trial)"
    )
    lines += [
        f"| {search['trained']} | {search['completed']} | {search['pruned']} | "
        f"{search['rejected']} | {search['failed_or_interrupted']} | "
        f"{phases.get('search', {}).get('seconds', '-')} s | {best_text} |",
        "",
    ]
    retrain = best.get("retrain") or {}
    lines += [
        "**3. The best configuration retrained** (`optuna-search retrain`, recorded on the "
        f"trial), {phases.get('retrain', {}).get('status', 'not run')}",
        "",
        "| trial | architecture | params | epochs | val accuracy | test accuracy | seconds |",
        "|---|---|---|---|---|---|---|",
        f"| {best.get('trial', '-')} | {best.get('arch', '-')} | {num(best.get('params'))} | "
        f"{num(retrain.get('epochs'))} | {pct(retrain.get('val_accuracy'))} | "
        f"**{pct(retrain.get('test_accuracy'))}** | {num(retrain.get('seconds'))} |",
        "",
    ]
    ref = reference or {}
    lines += [
        "**4. Reference: the paper's ResNet26-B453"
        + (" topology at 1/8 width" if tiny else "")
        + " with the paper's recipe**, same epochs (`optuna-search train`), "
        + phases.get("reference", {}).get("status", "not run"),
        "",
        "| architecture | params | recipe | epochs | val accuracy | test accuracy | seconds |",
        "|---|---|---|---|---|---|---|",
        f"| {ref.get('name', '-')} | {num(ref.get('params'))} | batch 128, SGD 0.1, cosine per "
        f"epoch | {num(ref.get('epochs'))} | {pct(ref.get('val_accuracy'))} | "
        f"**{pct(ref.get('test_accuracy'))}** | {num(ref.get('seconds'))} |",
    ]
    return "\n".join(lines)


def summarise(out: Path, config: StudyConfig, *, elapsed: float, tiny: bool) -> dict[str, Any]:
    study = open_study(out, config.name)
    engine = read_json(out / "engine.json")
    workers = read_json(out / "plan-workers.json")
    final = read_json(out / "plan-final.json")
    reference = last_json_line(out / "reference.log")
    phases = read_phases(out)
    search = search_figures(study)
    best = search.get("best") or {}
    retrain = best.get("retrain") or {}
    table = build_table(
        config=config,
        engine=engine,
        workers=workers,
        search=search,
        reference=reference,
        phases=phases,
        elapsed=elapsed,
        tiny=tiny,
    )
    return {
        "mode": "tiny (CPU)" if tiny else "gpu",
        "device": (engine or {}).get("device"),
        "date": datetime.date.today().isoformat(),
        "study": config.name,
        "storage": f"sqlite:///{DB_NAME} (in this folder)",
        "test_accuracy": retrain.get("test_accuracy"),
        "best_val_accuracy": best.get("val_accuracy"),
        "params": best.get("params"),
        "best_trial": best.get("trial"),
        "arch": best.get("arch"),
        "retrain_epochs": retrain.get("epochs"),
        "reference_test_accuracy": (reference or {}).get("test_accuracy"),
        "reference_arch": (reference or {}).get("name"),
        "reference_params": (reference or {}).get("params"),
        "reference_epochs": (reference or {}).get("epochs"),
        "gpu_minutes": round(elapsed / 60, 2),
        "phase_seconds": {name: p["seconds"] for name, p in phases.items()},
        "phase_status": {name: p["status"] for name, p in phases.items()},
        "search": {k: v for k, v in search.items() if k != "best"},
        "workers": workers,
        "final_plan": final,
        "engine": engine,
        "table": table,
    }


# --- the command line ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("workers")
    w.add_argument("study")
    w.add_argument("--device", required=True)
    w.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("data-flags")
    d.add_argument("study")
    c = sub.add_parser("data")
    c.add_argument("study")
    c.add_argument("--data-dir", required=True)
    f = sub.add_parser("final-plan")
    f.add_argument("out", type=Path)
    f.add_argument("--study", required=True)
    f.add_argument("--seconds", type=float, required=True, help="for the retrain + reference")
    f.add_argument("--startup", type=float, required=True, help="a process's start, each run")
    f.add_argument("--max-epochs", type=int, default=MAX_EPOCHS)
    s = sub.add_parser("summary")
    s.add_argument("out", type=Path)
    s.add_argument("--study", required=True)
    s.add_argument("--elapsed", type=float, required=True, help="the script's seconds so far")
    s.add_argument("--tiny", action="store_true")
    args = p.parse_args(argv)

    config = load_config(args.study)
    if args.command == "workers":
        plan = plan_workers(config, args.device)
        (args.out / "plan-workers.json").write_text(json.dumps(plan) + "\n")
        print(" ".join(plan["flags"]))
    elif args.command == "data-flags":
        print(" ".join(data_flags(config)))
    elif args.command == "data":
        from search.errors import UsageError
        from search.prepare import load_run_data, with_overrides

        try:
            data = load_run_data(with_overrides(config, data_dir=args.data_dir))
        except UsageError as e:
            print(f"gpu_proof.py data: error: {e}", file=sys.stderr)
            return 2
        print(f"data: {data.source}: {len(data.train)} train, {len(data.val)} val, ", end="")
        print(f"{len(data.test)} test images")
    elif args.command == "final-plan":
        study = open_study(args.out, config.name)
        engine = read_json(args.out / "engine.json")
        plan = plan_final(
            study,
            config,
            engine,
            seconds=args.seconds,
            startup=args.startup,
            max_epochs=args.max_epochs,
        )
        (args.out / "plan-final.json").write_text(json.dumps(plan) + "\n")
        print(plan["epochs"], plan["retrain_budget"])
    else:
        summary = summarise(args.out, config, elapsed=args.elapsed, tiny=args.tiny)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        (args.out / "table.md").write_text(summary["table"] + "\n")
        print(summary["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
