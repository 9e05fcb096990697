"""The budget: what a configuration may cost, and the verdict on every sampled one.

A :class:`Budget` (a parameter count, optionally MACs per image) judges a spec exactly
(analytic counts, microseconds, no torch) and says whether anything in a search space fits
at all. The verdict is recorded on the trial both as Optuna constraints (``params`` and
``macs``: a positive value means over budget, relative to the budget) so that the sampler
learns to avoid the region, and as user attrs, which optuna-dashboard shows.

Example:
    >>> from model.architectures import architecture
    >>> Budget().judge(architecture("ResNet14")).reason
    'over budget: 5,051,210 parameters > 5,000,000'
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.accounting import count_macs, count_params
from model.spec import ResNetSpec, SpecError
from search.record import VerdictLabel
from search.space import Candidate, IntRange, Param, SearchSpace, build_spec

DEFAULT_MAX_PARAMS = 5_000_000
"""The project's budget: the paper's best model (4,992,586 parameters) just fits."""

INVALID_VIOLATION = 1.0
"""Constraint value of a configuration that is not a valid architecture or recipe: as bad as
twice the budget, so the sampler ranks it among the worst infeasible trials."""


@dataclass(frozen=True, slots=True)
class Verdict:
    label: VerdictLabel
    params: int | None
    macs: int | None
    reason: str | None
    """None when the configuration is feasible."""
    violations: dict[str, float]
    """Constraint values for ``trial.set_constraint`` (<= 0 is feasible)."""

    @property
    def feasible(self) -> bool:
        return self.label is VerdictLabel.FEASIBLE


@dataclass(frozen=True, slots=True)
class Budget:
    """The most a configuration may cost: parameters, and optionally MACs per 32x32 image."""

    max_params: int = DEFAULT_MAX_PARAMS
    max_macs: int | None = None

    def fits(self, params: int, macs: int) -> bool:
        return params <= self.max_params and (self.max_macs is None or macs <= self.max_macs)

    def judge(self, spec: ResNetSpec) -> Verdict:
        """The verdict of a valid spec."""
        params, macs = count_params(spec), count_macs(spec)
        violations = {"params": (params - self.max_params) / self.max_params}
        reasons = []
        if params > self.max_params:
            reasons.append(f"{params:,} parameters > {self.max_params:,}")
        if self.max_macs is not None:
            violations["macs"] = (macs - self.max_macs) / self.max_macs
            if macs > self.max_macs:
                reasons.append(f"{macs:,} MACs > {self.max_macs:,}")
        if not reasons:
            return Verdict(VerdictLabel.FEASIBLE, params, macs, None, violations)
        reason = "over budget: " + ", ".join(reasons)
        return Verdict(VerdictLabel.OVER_BUDGET, params, macs, reason, violations)

    def invalid(self, reason: str) -> Verdict:
        """The verdict of a configuration that cannot be built (or trained)."""
        violations = {"params": INVALID_VIOLATION}
        if self.max_macs is not None:
            violations["macs"] = INVALID_VIOLATION
        return Verdict(VerdictLabel.INVALID, None, None, reason, violations)

    def judge_candidate(self, candidate: Candidate, recipe_error: str | None = None) -> Verdict:
        """The verdict of a sampled configuration: invalid when its spec or recipe is."""
        if candidate.spec is None or recipe_error is not None:
            return self.invalid(candidate.error or recipe_error or "")
        return self.judge(candidate.spec)

    def describe(self) -> str:
        macs = f", {self.max_macs:,} MACs" if self.max_macs is not None else ""
        return f"{self.max_params:,} parameters{macs}"

    def search(self, space: SearchSpace, *, limit: int = 50_000) -> Feasibility:
        """Whether some configuration of ``space`` is valid and within the budget.

        Parameter count and MACs grow with blocks, channels and kernel sizes, so the smallest
        configuration for each structure (layer count, strides, pool) takes the smallest of
        those; the structures themselves are enumerated (up to ``limit`` of them).
        """
        smallest: tuple[int, int] | None = None
        first_error = ""
        tried = 0
        for n in _structure_values(space.layers):
            per = {key: [p.for_layer(i) for i in range(n)] for key, p in space.per_layer.items()}
            arch: dict[str, Any] = {"layers": n}
            for key in ("blocks", "channels", "kernels", "shortcut_kernels"):
                arch[key] = [min(p.candidates()) for p in per[key]]
            arch["stem_channels"] = min(space.stem_channels.candidates())
            arch["num_classes"] = min(space.num_classes.candidates())
            combos: Iterable[Sequence[int]]
            if space.per_layer["strides"].shared:
                combos = [[v] * n for v in _structure_values(per["strides"][0])]
            else:
                combos = itertools.product(*(_structure_values(p) for p in per["strides"]))
            for strides, pool in itertools.product(combos, _structure_values(space.pool)):
                tried += 1
                if tried > limit:
                    break
                try:
                    spec = build_spec({**arch, "strides": list(strides), "pool": pool})
                except SpecError as e:
                    first_error = first_error or str(e)
                    continue
                cost = (count_params(spec), count_macs(spec))
                if smallest is None or cost < smallest:
                    smallest = cost
                if self.fits(*cost):
                    return Feasibility(True, smallest, first_error)
        return Feasibility(False, smallest, first_error)


@dataclass(frozen=True, slots=True)
class Feasibility:
    """What :meth:`Budget.search` found."""

    feasible: bool
    smallest: tuple[int, int] | None
    """(parameters, MACs) of the cheapest valid configuration seen; None: none was valid."""
    first_error: str
    """Why the first invalid structure was invalid."""


def _structure_values(param: Param) -> list[Any]:
    """Every value of a structural parameter (layers, stride, pool), or its ends if many."""
    if isinstance(param, IntRange) and (param.high - param.low) // param.step < 16:
        return list(range(param.low, param.high + 1, param.step))
    return param.candidates()


@dataclass(frozen=True)
class Survey:
    """How much of a space fits the budget, from ``n`` random samples."""

    n: int
    counts: dict[VerdictLabel, int]
    params: list[int] = field(default_factory=list)
    """Parameter counts of the valid samples (feasible and over budget)."""
    macs: list[int] = field(default_factory=list)
    feasible_params: list[int] = field(default_factory=list)
    feasible_macs: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def feasible(self) -> int:
        return self.counts[VerdictLabel.FEASIBLE]

    @property
    def over_budget(self) -> int:
        return self.counts[VerdictLabel.OVER_BUDGET]

    @property
    def invalid(self) -> int:
        return self.counts[VerdictLabel.INVALID]


def survey(space: SearchSpace, *, n: int, budget: Budget, seed: int = 0) -> Survey:
    """Sample ``space`` ``n`` times at random (through Optuna, as a study would) and judge
    every sample; nothing is trained and torch is not imported."""
    import optuna

    started = time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    result = Survey(n, dict.fromkeys(VerdictLabel, 0))
    for _ in range(n):
        v = budget.judge_candidate(space.sample(study.ask()))
        result.counts[v.label] += 1
        if v.params is None or v.macs is None:
            continue
        result.params.append(v.params)
        result.macs.append(v.macs)
        if v.feasible:
            result.feasible_params.append(v.params)
            result.feasible_macs.append(v.macs)
    return Survey(
        result.n,
        result.counts,
        result.params,
        result.macs,
        result.feasible_params,
        result.feasible_macs,
        time.perf_counter() - started,
    )
