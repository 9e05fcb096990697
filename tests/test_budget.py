"""The budget verdict (exact counts against the budget) and the random survey of a space."""

from __future__ import annotations

import optuna
import pytest

from model.accounting import count_macs, count_params
from model.architectures import architecture
from model.spec import make_spec
from search.budget import INVALID_VIOLATION, Budget, Verdict, survey
from search.config import load_config
from search.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

B453 = architecture("ResNet26-B453")  # 4,992,586 parameters (the paper's count)
R14 = architecture("ResNet14")  # 5,051,210 parameters


def test_under_the_parameter_budget() -> None:
    v = Budget(5_000_000).judge(B453)
    assert v.feasible and v.label == "feasible" and v.reason is None
    assert v.params == 4_992_586 and v.macs == count_macs(B453)
    assert v.violations == {"params": pytest.approx((4_992_586 - 5_000_000) / 5_000_000)}
    assert v.violations["params"] < 0


def test_over_the_parameter_budget() -> None:
    v = Budget(5_000_000).judge(R14)
    assert not v.feasible and v.label == "over_budget"
    assert v.reason == "over budget: 5,051,210 parameters > 5,000,000"
    assert v.violations["params"] == pytest.approx(51_210 / 5_000_000)
    assert "macs" not in v.violations


def test_exactly_at_the_budget_is_feasible() -> None:
    v = Budget(4_992_586).judge(B453)
    assert v.feasible and v.violations["params"] == 0
    assert not Budget(4_992_585).judge(B453).feasible


def test_violation_is_relative_to_the_budget() -> None:
    spec = make_spec(blocks=[1], channels=[8], pool="global", stem_channels=8)
    params = count_params(spec)
    v = Budget(params // 2).judge(spec)
    assert v.violations["params"] == pytest.approx((params - params // 2) / (params // 2))
    assert Budget(2 * params).judge(spec).violations["params"] == pytest.approx(-0.5)


def test_max_macs_both_ways() -> None:
    macs = count_macs(B453)
    within = Budget(5_000_000, macs).judge(B453)
    assert within.feasible and within.violations["macs"] == 0
    over = Budget(5_000_000, macs - 1000).judge(B453)
    assert not over.feasible and over.label == "over_budget"
    assert over.reason == f"over budget: {macs:,} MACs > {macs - 1000:,}"
    assert over.violations["macs"] == pytest.approx(1000 / (macs - 1000))
    assert over.violations["params"] < 0
    roomy = Budget(5_000_000, 2 * macs).judge(B453)
    assert roomy.feasible and roomy.violations["macs"] == pytest.approx(-0.5)


def test_over_both_budgets_names_both() -> None:
    macs = count_macs(R14)
    v = Budget(5_000_000, macs // 2).judge(R14)
    assert v.label == "over_budget"
    assert (
        v.reason == f"over budget: 5,051,210 parameters > 5,000,000, {macs:,} MACs > {macs // 2:,}"
    )
    assert v.violations["params"] > 0 and v.violations["macs"] > 0


@pytest.mark.parametrize("max_macs", [None, 10**9])
def test_feasible_verdicts_have_no_positive_violation(max_macs: int | None) -> None:
    for name in ("ResNet10", "ResNet26-B453", "ResNet56", "ResNet26-B453-P2"):
        v = Budget(5_000_000, max_macs).judge(architecture(name))
        assert v.feasible, name
        assert all(x <= 0 for x in v.violations.values())
        assert set(v.violations) == ({"params"} if max_macs is None else {"params", "macs"})


def test_invalid() -> None:
    v = Budget().invalid("invalid architecture: pool=8: is larger than the last feature map (4x4)")
    assert isinstance(v, Verdict)
    assert not v.feasible and v.label == "invalid"
    assert v.params is None and v.macs is None
    assert v.violations == {"params": INVALID_VIOLATION}
    assert INVALID_VIOLATION > 0
    with_macs = Budget(max_macs=10).invalid("training recipe: lr=0 must be a positive number")
    assert with_macs.violations == {"params": INVALID_VIOLATION, "macs": INVALID_VIOLATION}
    assert with_macs.label == "invalid"


def test_survey_of_the_smoke_space() -> None:
    config = load_config("smoke")
    s = survey(config.space, n=200, budget=Budget(config.budget.max_params, None), seed=0)
    assert s.n == 200
    assert s.feasible + s.over_budget + s.invalid == 200
    assert s.feasible > 0 and s.over_budget > 0  # the smoke budget is small on purpose
    assert len(s.params) == len(s.macs) == s.feasible + s.over_budget
    assert len(s.feasible_params) == len(s.feasible_macs) == s.feasible
    assert all(p <= config.budget.max_params for p in s.feasible_params)
    assert sum(p > config.budget.max_params for p in s.params) == s.over_budget
    assert sorted(s.feasible_params) == sorted(p for p in s.params if p <= config.budget.max_params)
    assert s.seconds >= 0


def test_survey_is_deterministic_for_a_seed() -> None:
    space = load_config("smoke").space
    a = survey(space, n=100, budget=Budget(30_000, None), seed=3)
    b = survey(space, n=100, budget=Budget(30_000, None), seed=3)
    assert (a.feasible, a.over_budget, a.invalid) == (b.feasible, b.over_budget, b.invalid)
    assert a.params == b.params and a.macs == b.macs
    c = survey(space, n=100, budget=Budget(30_000, None), seed=4)
    assert c.params != a.params


def test_survey_counts_invalid_samples_and_max_macs() -> None:
    # stride 4 leaves an 8x8 map, smaller than the 16x16 pool: invalid.
    space = SearchSpace.from_dict(
        {
            "architecture": {
                "layers": 1,
                "blocks": {"int": [1, 3]},
                "channels": {"choice": [8, 64]},
                "stride": [{"choice": [1, 4]}],
                "pool": 16,
                "stem_channels": 8,
            }
        }
    )
    s = survey(space, n=80, budget=Budget(10**9, None), seed=0)
    assert s.invalid > 0 and s.feasible == 80 - s.invalid and s.over_budget == 0
    median = sorted(s.macs)[len(s.macs) // 2]
    t = survey(space, n=80, budget=Budget(10**9, median), seed=0)
    assert t.invalid == s.invalid
    assert t.over_budget == sum(m > median for m in s.macs) > 0
    assert all(m <= median for m in t.feasible_macs)
