"""Warm start against a cold start: the best value a study finds in its first trained trials.

For each seed: study A searches a neighbouring space (shifted layer counts, channel choices
and learning-rate range) for 100 trained trials; then study B searches its own space for 20
trained trials twice, once cold and once warm-started from A (``warm_start: [{study: A}]``).
Everything is the real worker loop (``search.worker.run_worker``: sampling, budget verdicts,
slots, recording, the warm start itself) in a dry run: ``DryTrainer``'s score, a
deterministic function of the architecture and the learning rate (it grows with the
parameter count and depth, and is best at lr 0.1), stands in for training, so the sampler
has a real optimum to find at the budget's edge. The default sampler (TPE, 10 random startup
trials), no pruner (every trained trial completes), SQLite in a temporary folder.

Printed: per seed, B's best value after its first 5, 10 and 20 trained trials, cold and warm
(carried trials are never B's best: only trials trained in B count), and how many of A's
trials were carried and left out.

Run: python benchmarks/bench_warm_start.py [--seeds 5] [--source-trials 100] [--trials 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import optuna

from search.config import StudyConfig, parse_config
from search.record import StudyRecord, TrialRecord
from search.worker import WorkerOptions, run_worker

optuna.logging.set_verbosity(optuna.logging.ERROR)

CHECKPOINTS = (5, 10, 20)
"""B's best value is read after this many of its own trained trials."""


def _space(layers: list[int], channels: list[int], lr: list[float]) -> dict[str, Any]:
    return {
        "architecture": {
            "layers": {"int": layers},
            "blocks": {"int": [1, 3]},
            "channels": {"choice": channels},
            "kernels": {"choice": [3, 5]},
            "strides": [{"choice": [1, 2]}, {"choice": [1, 2]}, {"choice": [2, 4]}, 2],
            "pool": {"choice": [1, 2, "global"]},
            "stem_channels": 16,
        },
        "training": {"epochs": 3, "batch_size": 100, "lr": {"float": lr, "log": True}},
    }


COMMON: dict[str, Any] = {
    "objectives": ["val_accuracy"],
    "budget": {"max_params": 150_000},
    "pruner": {"name": "none"},
    "data": {"dataset": "synthetic", "synthetic_size": [600, 200], "val_size": 200},
}
SOURCE_SPACE = _space([1, 3], [8, 16, 24, 32, 48], [0.003, 0.3])
TARGET_SPACE = _space([2, 4], [16, 24, 32, 48, 64], [0.01, 1.0])


def config(name: str, space: dict[str, Any], trials: int, seed: int, **extra: Any) -> StudyConfig:
    raw = {"name": name, **COMMON, "trials": trials, "space": space, **extra}
    raw["sampler"] = {"name": "tpe", "seed": seed, "n_startup_trials": 10}
    return parse_config(raw, path=Path(f"{name}.yaml"))


def run(study: StudyConfig, url: str) -> float:
    """Run the study's trials in this process; its wall seconds."""
    started = time.perf_counter()
    options = WorkerOptions(storage_url=url, device="cpu", dry_run=0)
    run_worker(study, options, load_data=lambda: None, log=lambda line: None)
    return time.perf_counter() - started


def best_after(url: str, name: str) -> list[float]:
    """The study's best own value after each of :data:`CHECKPOINTS` trained trials."""
    study = optuna.load_study(study_name=name, storage=url)
    best, out, trained = float("-inf"), [], 0
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.of(t)
        if not r.trained:  # rejected, reused, carried: not one of B's trained trials
            continue
        trained += 1
        if t.state is optuna.trial.TrialState.COMPLETE and t.values:
            best = max(best, t.values[0])
        if trained in CHECKPOINTS:
            out.append(best)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--source-trials", type=int, default=100)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    assert args.trials >= max(CHECKPOINTS)
    print(
        f"warm start, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs), "
        f"optuna {optuna.__version__}; A: {args.source_trials} trained trials, B: "
        f"{args.trials}; best value after {', '.join(map(str, CHECKPOINTS))} of B's trials"
    )
    header = " ".join(f"{'cold@' + str(k):>8} {'warm@' + str(k):>8}" for k in CHECKPOINTS)
    print(f"{'seed':>4} {header} {'carried':>8} {'left out':>9} {'A best':>7} {'seconds':>8}")
    cold_all: list[list[float]] = []
    warm_all: list[list[float]] = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)  # the workers' checkpoints and artifacts
        for seed in range(args.seeds):
            url = f"sqlite:///{Path(folder) / f'seed{seed}.db'}"
            started = time.perf_counter()
            run(config("A", SOURCE_SPACE, args.source_trials, seed), url)
            run(config("B-cold", TARGET_SPACE, args.trials, seed), url)
            warm = config("B-warm", TARGET_SPACE, args.trials, seed, warm_start=["A"])
            run(warm, url)
            cold, hot = best_after(url, "B-cold"), best_after(url, "B-warm")
            cold_all.append(cold)
            warm_all.append(hot)
            (entry,) = (
                StudyRecord.of(optuna.load_study(study_name="B-warm", storage=url)).warm_start or []
            )
            a_best = optuna.load_study(study_name="A", storage=url).best_value
            cells = " ".join(f"{c:>8.4f} {w:>8.4f}" for c, w in zip(cold, hot, strict=True))
            left_out = sum(entry["left_out"].values())
            print(
                f"{seed:>4} {cells} {entry['carried']:>8} {left_out:>9} {a_best:>7.4f} "
                f"{time.perf_counter() - started:>8.1f}"
            )
            counts = sorted(entry["left_out"].items(), key=lambda item: -item[1])
            reasons = "; ".join(f"{n}: {r}" for r, n in counts)
            print(f"     left out: {reasons}")
        os.chdir("/")
    means = " ".join(
        f"{statistics.mean(c[i] for c in cold_all):>8.4f} "
        f"{statistics.mean(w[i] for w in warm_all):>8.4f}"
        for i in range(len(CHECKPOINTS))
    )
    print(f"{'mean':>4} {means}")
    wins = sum(w[-1] > c[-1] for c, w in zip(cold_all, warm_all, strict=True))
    ties = sum(w[-1] == c[-1] for c, w in zip(cold_all, warm_all, strict=True))
    print(f"after {CHECKPOINTS[-1]}: warm better in {wins} of {args.seeds} seeds, equal in {ties}")


if __name__ == "__main__":
    main()
