"""``optuna-search space``: sample a study's space without training: how much fits."""

from __future__ import annotations

import argparse
import json

from search.cli.common import add_study_arg, load_config, quiet_optuna
from search.errors import UsageError

HELP = DESCRIPTION = "sample a study's space without training: how much fits the budget"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study_arg(p)
    p.add_argument("--sample", type=int, default=1000, metavar="N", help="default 1000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def _spread(values: list[int]) -> dict[str, int] | None:
    if not values:
        return None
    v = sorted(values)
    pick = {"min": 0.0, "p10": 0.1, "median": 0.5, "p90": 0.9, "max": 1.0}
    return {k: v[min(len(v) - 1, round(q * (len(v) - 1)))] for k, q in pick.items()}


def take_action(args: argparse.Namespace) -> int:
    from search.budget import survey

    quiet_optuna()
    config = load_config(args)
    if args.sample <= 0:
        raise UsageError(f"--sample must be positive, got {args.sample}")
    s = survey(config.space, n=args.sample, budget=config.budget, seed=args.seed)
    out = {
        "study": config.name,
        "samples": s.n,
        "feasible": s.feasible,
        "over_budget": s.over_budget,
        "invalid": s.invalid,
        "feasible_share": s.feasible / s.n,
        "over_budget_share": s.over_budget / s.n,
        "invalid_share": s.invalid / s.n,
        "max_params": config.budget.max_params,
        "params_valid": _spread(s.params),
        "params_feasible": _spread(s.feasible_params),
        "macs_feasible": _spread(s.feasible_macs),
        "seconds": round(s.seconds, 3),
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{config.name}: {s.n} random configurations in {s.seconds:.2f} s")
    print(f"  feasible    {s.feasible:6d}  {s.feasible / s.n:6.1%}")
    print(
        f"  over budget {s.over_budget:6d}  {s.over_budget / s.n:6.1%}  "
        f"(> {config.budget.describe().replace(', ', ' or ')})"
    )
    print(
        f"  invalid     {s.invalid:6d}  {s.invalid / s.n:6.1%}  (e.g. a pool larger than the "
        "last map, a stride past 1x1)"
    )
    for title, values in (
        ("parameters, feasible", out["params_feasible"]),
        ("parameters, all valid", out["params_valid"]),
        ("MACs/image, feasible", out["macs_feasible"]),
    ):
        if isinstance(values, dict):
            row = "  ".join(f"{k} {v:,.0f}" for k, v in values.items())
            print(f"  {title:<22} {row}")
    return 0
