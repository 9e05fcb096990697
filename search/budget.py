"""The budget check: every sampled configuration is judged before anything is built.

The verdict is exact (analytic parameter and MAC counts) and takes microseconds. It is
recorded on the trial both as Optuna constraints (``params`` and ``macs``: a positive value
means over budget, relative to the budget) so that the sampler learns to avoid the region,
and as user attrs, which optuna-dashboard shows.

Example:
    >>> from model.architectures import architecture
    >>> judge(architecture("ResNet14"), max_params=5_000_000).reason
    'over budget: 5,051,210 parameters > 5,000,000'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.accounting import count_macs, count_params
from model.spec import ResNetSpec

INVALID_VIOLATION = 1.0
"""Constraint value of a configuration that is not a valid architecture or recipe: as bad as
twice the budget, so the sampler ranks it among the worst infeasible trials."""


@dataclass(frozen=True, slots=True)
class Verdict:
    params: int | None
    macs: int | None
    reason: str | None
    """None when the configuration is feasible."""
    violations: dict[str, float]
    """Constraint values for ``trial.set_constraint`` (<= 0 is feasible)."""

    @property
    def feasible(self) -> bool:
        return self.reason is None

    @property
    def label(self) -> str:
        """``feasible``, ``over_budget`` or ``invalid``."""
        if self.reason is None:
            return "feasible"
        return "over_budget" if self.reason.startswith("over budget") else "invalid"


def judge(spec: ResNetSpec, *, max_params: int, max_macs: int | None = None) -> Verdict:
    """The verdict of a valid spec against the budget."""
    params, macs = count_params(spec), count_macs(spec)
    violations = {"params": (params - max_params) / max_params}
    reasons = []
    if params > max_params:
        reasons.append(f"{params:,} parameters > {max_params:,}")
    if max_macs is not None:
        violations["macs"] = (macs - max_macs) / max_macs
        if macs > max_macs:
            reasons.append(f"{macs:,} MACs > {max_macs:,}")
    reason = "over budget: " + ", ".join(reasons) if reasons else None
    return Verdict(params, macs, reason, violations)


def invalid(reason: str, *, max_macs: int | None = None) -> Verdict:
    """The verdict of a configuration that cannot be built (or trained)."""
    violations = {"params": INVALID_VIOLATION}
    if max_macs is not None:
        violations["macs"] = INVALID_VIOLATION
    return Verdict(None, None, reason, violations)


@dataclass(frozen=True)
class Survey:
    """How much of a space fits the budget, from ``n`` random samples."""

    n: int
    feasible: int
    over_budget: int
    invalid: int
    params: list[int]
    """Parameter counts of the valid samples (feasible and over budget)."""
    macs: list[int]
    feasible_params: list[int]
    feasible_macs: list[int]
    seconds: float


def survey(space: Any, *, n: int, max_params: int, max_macs: int | None, seed: int = 0) -> Survey:
    """Sample ``space`` ``n`` times at random (through Optuna, as a study would) and judge
    every sample; nothing is trained and torch is not imported."""
    import time

    import optuna

    started = time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    counts = {"feasible": 0, "over_budget": 0, "invalid": 0}
    params, macs, f_params, f_macs = [], [], [], []
    for _ in range(n):
        trial = study.ask()
        candidate = space.sample(trial)
        if candidate.spec is None:
            counts["invalid"] += 1
            continue
        v = judge(candidate.spec, max_params=max_params, max_macs=max_macs)
        counts[v.label] += 1
        params.append(v.params)
        macs.append(v.macs)
        if v.feasible:
            f_params.append(v.params)
            f_macs.append(v.macs)
    return Survey(
        n,
        counts["feasible"],
        counts["over_budget"],
        counts["invalid"],
        params,
        macs,
        f_params,
        f_macs,
        time.perf_counter() - started,
    )
