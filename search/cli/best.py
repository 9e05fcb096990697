"""``optuna-search best``: the best trial (or Pareto set), with the command that retrains it."""

from __future__ import annotations

import argparse
import dataclasses
import json

from search.cli.common import add_storage_arg, add_study_arg, load_study, say

HELP = DESCRIPTION = "the best trial (or Pareto set) with its retrain command"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study_arg(p)
    add_storage_arg(p)
    p.add_argument("--json", action="store_true")


def take_action(args: argparse.Namespace) -> int:
    from search.results import best_trials, describe

    config, study, _ = load_study(args)
    data = dataclasses.asdict(config.data)
    best = [describe(t, data=data) for t in best_trials(study)]
    if args.json:
        out = {"study": config.name, "objectives": list(config.objectives), "best": best}
        print(json.dumps(out))
        return 0 if best else 1
    if not best:
        say(f"study {config.name}: no completed feasible trial yet")
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
        retrain = b.get("retrain")
        if retrain and retrain.get("test_accuracy") is not None:
            print(
                f"  retrained: {retrain['epochs']} epochs, test accuracy "
                f"{retrain['test_accuracy']:.4f}"
            )
        print(f"  retrain: {b['train_command']}")
    return 0
