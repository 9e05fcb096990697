"""``optuna-search validate``: check a study config without touching storage (no torch)."""

from __future__ import annotations

import argparse

from search.cli.common import add_study_arg, load_config, quiet_optuna
from search.config import StudyConfig
from search.samplers import describe

HELP = DESCRIPTION = "check a study config without touching storage (no torch)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study_arg(p)


def take_action(args: argparse.Namespace) -> int:
    config = load_config(args)
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
    print(f"  budget: {config.budget.describe()}")
    trials = f"{config.trials} trained trials" if config.trials else "no trial count"
    timeout = f", timeout {config.timeout:,.0f} s" if config.timeout else ""
    pruner, sampler = config.pruner, config.sampler
    print(
        f"  {trials}{timeout}; sampler {describe(sampler.name, sampler.kwargs)}; "
        f"pruner {describe(pruner.name, pruner.kwargs)}"
        + (
            f" (epochs {pruner.min_epochs}..{pruner.max_epochs}, reduction "
            f"{pruner.reduction_factor})"
            if pruner.name in ("asha", "hyperband")
            else ""
        )
    )
    data = config.data
    print(
        f"  data: {data.dataset}"
        + (f" from {data.data_dir}" if data.dataset == "cifar10" else "")
        + f", {data.val_size} validation images"
    )
    for label, params in config.enqueue:
        print(f"  enqueued {label}: {enqueued_verdict(config, params)}")
    return 0


def enqueued_verdict(config: StudyConfig, params: dict[str, object]) -> str:
    """What the objective will say of an enqueued trial: sampled as a study would sample it
    and judged by the same budget."""
    import optuna

    quiet_optuna()
    study = optuna.create_study()
    study.enqueue_trial(params)
    candidate = config.space.sample(study.ask())
    if candidate.spec is None:
        return "not a valid architecture (it will be rejected)"
    v = config.budget.judge(candidate.spec)
    verdict = "within budget" if v.feasible else f"{v.reason}: will be rejected"
    return f"{candidate.spec.name}, {v.params:,} parameters ({verdict})"
