"""The search space: parameter syntax, its errors, conditional sampling and enqueue round trips."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from model.architectures import architecture
from model.spec import make_spec
from search.config import load_config
from search.space import (
    Choice,
    Fixed,
    FloatRange,
    IntRange,
    SearchSpace,
    SpaceError,
    parse_param,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def _space(arch: dict[str, Any], training: dict[str, Any] | None = None) -> SearchSpace:
    base: dict[str, Any] = {"blocks": 1, "channels": 8, "stem_channels": 8, "pool": "global"}
    return SearchSpace.from_dict({"architecture": {**base, **arch}, "training": training or {}})


# ---------------------------------------------------------------------------------------------
# parse_param


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3, Fixed(3)),
        (0.9, Fixed(0.9)),
        ("global", Fixed("global")),
        (True, Fixed(True)),
        ({"int": [1, 6]}, IntRange(1, 6)),
        ({"int": [16, 512], "step": 16}, IntRange(16, 512, 16)),
        ({"int": [1, 64], "log": True}, IntRange(1, 64, 1, True)),
        ({"float": [0.01, 0.4], "log": True}, FloatRange(0.01, 0.4, None, True)),
        ({"float": [0, 1], "step": 0.25}, FloatRange(0.0, 1.0, 0.25)),
        ({"float": [1, 3]}, FloatRange(1.0, 3.0)),
        ({"choice": [2, 4, "global"]}, Choice((2, 4, "global"))),
        ({"choice": [True, False]}, Choice((True, False))),
        ({"choice": [7]}, Choice((7,))),
    ],
)
def test_parse_param_accepts_each_form(raw: Any, expected: Any) -> None:
    param = parse_param(raw, "x")
    assert param == expected
    assert type(param) is type(expected)


def test_float_range_bounds_become_floats_and_int_range_keeps_ints() -> None:
    f = parse_param({"float": [0, 3]}, "x")
    assert isinstance(f, FloatRange) and isinstance(f.low, float) and isinstance(f.high, float)
    i = parse_param({"int": [1, 10], "step": 3}, "x")
    assert isinstance(i, IntRange) and i.candidates() == [1, 10]
    assert parse_param({"int": [1, 9], "step": 3}, "x").candidates() == [1, 7]


def test_mixed_choice_keeps_values_and_types() -> None:
    param = parse_param({"choice": [1, 2, 4, 8, "global"]}, "space.architecture.pool")
    assert isinstance(param, Choice)
    assert param.candidates() == [1, 2, 4, 8, "global"]
    assert param.contains("global") and param.contains(8)
    assert not param.contains(3) and not param.contains("8")
    assert not parse_param({"choice": [1, 0]}, "x").contains(True)  # True == 1, but not a choice


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ([1, 2], "k", "ambiguous"),
        ({}, "k", "exactly one of"),
        ({"log": True}, "k", "exactly one of"),
        ({"int": [1, 2], "float": [1, 2]}, "k", "exactly one of"),
        ({"int": [1, 5], "lgo": True}, "k.lgo", "did you mean 'log'"),
        ({"float": [0.1, 1], "stpe": 0.1}, "k.stpe", "did you mean 'step'"),
        ({"choice": [1, 2], "log": True}, "k.log", "unknown key 'log'"),
        ({"choice": []}, "k.choice", "non-empty"),
        ({"choice": 3}, "k.choice", "non-empty list"),
        ({"choice": [1, [2, 3]]}, "k.choice", "plain numbers"),
        ({"choice": [1, {"int": [1, 2]}]}, "k.choice", "plain numbers"),
        ({"choice": [3, 5, 3]}, "k.choice", "repeated"),
        ({"int": ["a", 3]}, "k.int", "two numbers"),
        ({"float": [0.1, "high"]}, "k.float", "two numbers"),
        ({"float": [0.1]}, "k.float", "two numbers"),
        ({"float": [0.1, 0.2, 0.3]}, "k.float", "two numbers"),
        ({"int": [True, 3]}, "k.int", "two numbers"),
        ({"float": [0.0, float("nan")]}, "k.float", "two numbers"),
        ({"int": [1.0, 3]}, "k.int", "integer bounds"),
        ({"int": [1, 2.5]}, "k.int", "integer bounds"),
        ({"int": [5, 1]}, "k.int", "greater than high"),
        ({"float": [0.5, 0.1]}, "k.float", "greater than high"),
        ({"float": [0, 1], "log": True}, "k.float", "low > 0"),
        ({"int": [-2, 4], "log": True}, "k.int", "low > 0"),
        ({"float": [0.1, 1], "log": "yes"}, "k.log", "true or false"),
        ({"int": [1, 8], "step": -1}, "k.step", "positive int"),
        ({"int": [1, 8], "step": 0}, "k.step", "positive int"),
        ({"int": [1, 8], "step": 0.5}, "k.step", "positive int"),
        ({"int": [1, 8], "step": True}, "k.step", "positive int"),
        ({"float": [0.0, 1.0], "step": -0.1}, "k.step", "positive float"),
        ({"float": [0.0, 1.0], "step": "0.1"}, "k.step", "positive float"),
        ({"int": [1, 8], "step": 2, "log": True}, "k.step", "combined with log"),
        ({"float": [0.1, 1.0], "step": 0.1, "log": True}, "k.step", "combined with log"),
    ],
)
def test_parse_param_errors_name_the_dotted_key(raw: Any, key: str, fragment: str) -> None:
    with pytest.raises(SpaceError) as info:
        parse_param(raw, "k")
    assert info.value.key == key
    assert fragment in str(info.value)


def test_parse_param_extra_options_are_allowed_only_when_named() -> None:
    with pytest.raises(SpaceError, match="unknown key 'note'"):
        parse_param({"int": [1, 2], "note": "x"}, "k")
    assert parse_param({"int": [1, 2], "note": "x"}, "k", extra=("note",)) == IntRange(1, 2)


# ---------------------------------------------------------------------------------------------
# SearchSpace.from_dict


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ([1], "space", "must be a mapping"),
        ({"architecture": {"layers": 1}, "trainng": {}}, "space.trainng", "'training'"),
        ({"training": {}}, "space.architecture", "is required"),
        ({"architecture": [1]}, "space.architecture", "must be a mapping"),
        (
            {"architecture": {"layers": 1, "blocks": 1, "channels": 8}, "training": [1]},
            "space.training",
            "must be a mapping",
        ),
        ({"architecture": {"blocks": 1, "channels": 8}}, "space.architecture.layers", "required"),
        ({"architecture": {"layers": 1, "channels": 8}}, "space.architecture.blocks", "required"),
        ({"architecture": {"layers": 1, "blocks": 1}}, "space.architecture.channels", "required"),
        (
            {"architecture": {"layers": 1, "blocks": 1, "channels": 8, "chanels": 8}},
            "space.architecture.chanels",
            "did you mean 'channels'",
        ),
        (
            {"architecture": {"layers": 1, "blocks": 1, "channels": 8, "strids": [1]}},
            "space.architecture.strids",
            "did you mean 'strides'",
        ),
        (
            {"architecture": {"layers": 1, "blocks": 1, "channels": 8, "stride": 1, "strides": 1}},
            "space.architecture.strides",
            "given twice",
        ),
        (
            {"architecture": {"layers": 1, "blocks": 1, "channels": 8}, "training": {"lrr": 0.1}},
            "space.training.lrr",
            "did you mean 'lr'",
        ),
        (
            {"architecture": {"layers": 1, "blocks": 1, "channels": 8}, "training": {"seed": 1}},
            "space.training.seed",
            "unknown key 'seed'",
        ),
        (
            {"architecture": {"layers": {"int": [2, 4]}, "blocks": [1, 2, 3], "channels": 8}},
            "space.architecture.blocks",
            "3 per-layer entries but up to 4 layers",
        ),
        (
            {"architecture": {"layers": {"choice": [1, 3]}, "blocks": 1, "channels": [8, 16]}},
            "space.architecture.channels",
            "2 per-layer entries but up to 3 layers",
        ),
        (
            {
                "architecture": {
                    "layers": 2,
                    "blocks": {"int": [1, 3], "per_layer": "no"},
                    "channels": 8,
                }
            },
            "space.architecture.blocks.per_layer",
            "true or false",
        ),
        (
            {"architecture": {"layers": 2, "blocks": 1, "channels": [8, {"choice": []}]}},
            "space.architecture.channels[1].choice",
            "non-empty",
        ),
        (
            {"architecture": {"layers": 0, "blocks": 1, "channels": 8}},
            "space.architecture.layers",
            "positive integers",
        ),
        (
            {"architecture": {"layers": {"float": [1, 3]}, "blocks": 1, "channels": 8}},
            "space.architecture.layers",
            "positive integers",
        ),
        (
            {"architecture": {"layers": 2, "blocks": 1, "channels": 8, "pool": {"choice": []}}},
            "space.architecture.pool.choice",
            "non-empty",
        ),
        (
            {
                "architecture": {"layers": 1, "blocks": 1, "channels": 8},
                "training": {"lr": {"float": [0.5, 0.1]}},
            },
            "space.training.lr.float",
            "greater than high",
        ),
    ],
)
def test_from_dict_errors_name_the_dotted_key(raw: Any, key: str, fragment: str) -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(raw)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_from_dict_where_prefixes_keys() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict({"architecture": {"layers": 1, "blocks": 1}}, where="s")
    assert info.value.key == "s.architecture.channels"


def test_per_layer_list_may_be_longer_than_max_layers() -> None:
    space = _space({"layers": 2, "channels": [8, 16, 32]})
    assert space.sample(_study().ask()).spec is not None


# ---------------------------------------------------------------------------------------------
# Sampling with a real Optuna study


def test_layers_are_sampled_first_and_only_existing_layers_get_params() -> None:
    space = _space(
        {
            "layers": {"int": [1, 4]},
            "blocks": {"int": [1, 3]},
            "channels": [
                {"choice": [8, 16]},
                {"choice": [24, 32]},
                {"choice": [40, 48]},
                {"choice": [56, 64]},
            ],
            "kernel": {"choice": [3, 5]},
            "pool": {"choice": [1, "global"]},
        }
    )
    study = _study(seed=1)
    seen = set()
    for _ in range(60):
        trial = study.ask()
        candidate = space.sample(trial)
        n = trial.params["layers"]
        seen.add(n)
        assert next(iter(trial.params)) == "layers"  # suggested before anything it conditions
        per_layer = {f"{k}_{i}" for k in ("blocks", "channels", "kernel") for i in range(1, n + 1)}
        assert set(trial.params) == {"layers", "pool"} | per_layer
        assert candidate.arch["layers"] == n
        assert candidate.spec is not None and candidate.spec.num_layers == n
        assert list(candidate.spec.blocks) == [trial.params[f"blocks_{i}"] for i in range(1, n + 1)]
        study.tell(trial, 0.0)
    assert seen == {1, 2, 3, 4}


def test_list_form_uses_the_range_of_each_layer_index() -> None:
    choices = [(8, 16), (24, 32), (40, 48)]
    space = _space({"layers": 3, "channels": [{"choice": list(c)} for c in choices]})
    study = _study(seed=2)
    values: list[set[int]] = [set(), set(), set()]
    for _ in range(40):
        trial = study.ask()
        candidate = space.sample(trial)
        assert candidate.spec is not None
        for i, c in enumerate(candidate.spec.channels):
            assert c in choices[i]
            values[i].add(c)
        assert trial.distributions["channels_2"] == optuna.distributions.CategoricalDistribution(
            choices[1]
        )
    assert [sorted(v) for v in values] == [sorted(c) for c in choices]


def test_per_layer_false_gives_one_shared_param() -> None:
    space = _space(
        {
            "layers": {"int": [2, 3]},
            "blocks": {"int": [1, 4], "per_layer": False},
            "kernel": {"choice": [1, 3, 5], "per_layer": False},
        }
    )
    study = _study(seed=3)
    for _ in range(20):
        trial = study.ask()
        candidate = space.sample(trial)
        assert "blocks" in trial.params and "kernel" in trial.params
        assert not any(k.startswith(("blocks_", "kernel_")) for k in trial.params)
        assert candidate.spec is not None
        assert set(candidate.spec.blocks) == {trial.params["blocks"]}
        assert set(candidate.spec.kernels) == {trial.params["kernel"]}
        assert len(candidate.spec.blocks) == trial.params["layers"]
    assert space.param_names() == ["layers", "blocks", "kernel"]


def test_per_layer_true_is_the_default() -> None:
    space = _space({"layers": 2, "blocks": {"int": [1, 4], "per_layer": True}})
    trial = _study().ask()
    space.sample(trial)
    assert set(trial.params) == {"blocks_1", "blocks_2"}


def test_default_strides_are_one_then_two() -> None:
    space = _space({"layers": {"int": [1, 4]}})
    study = _study(seed=4)
    seen = set()
    for _ in range(40):
        trial = study.ask()
        candidate = space.sample(trial)
        assert candidate.spec is not None
        n = candidate.spec.num_layers
        seen.add(n)
        assert candidate.spec.strides == (1,) + (2,) * (n - 1)
        assert not any(k.startswith("stride") for k in trial.params)
    assert seen == {1, 2, 3, 4}


def test_single_fixed_stride_applies_to_every_layer() -> None:
    space = _space({"layers": 3, "stride": 2})
    candidate = space.sample(_study().ask())
    assert candidate.spec is not None and candidate.spec.strides == (2, 2, 2)


def test_invalid_combination_is_a_candidate_error_not_an_exception() -> None:
    # stride 4 leaves an 8x8 map, smaller than the 16x16 pool; stride 1 leaves 32x32.
    space = _space({"layers": 1, "stride": [{"choice": [1, 4]}], "pool": 16})
    study = _study(seed=5)
    outcomes = set()
    for _ in range(30):
        trial = study.ask()
        candidate = space.sample(trial)
        if trial.params["stride_1"] == 4:
            assert candidate.spec is None
            assert candidate.error is not None and "pool" in candidate.error
            assert candidate.arch["strides"] == [4] and candidate.arch["pool"] == 16
        else:
            assert candidate.spec is not None and candidate.error is None
            assert candidate.spec.pool == 16
        outcomes.add(candidate.spec is None)
    assert outcomes == {True, False}


def test_even_kernel_in_space_is_refused() -> None:
    with pytest.raises(SpaceError, match="must be odd") as info:
        _space({"layers": 1, "kernel": {"choice": [3, 4]}})
    assert info.value.key.endswith("architecture.kernel")
    with pytest.raises(SpaceError, match="step: 2"):
        _space({"layers": 1, "kernel": {"int": [3, 7]}})
    _space({"layers": 1, "kernel": {"int": [3, 7], "step": 2}})


def test_unbuildable_sample_gives_candidate_error() -> None:
    space = _space({"layers": 1, "stride": [{"choice": [1, 4]}], "pool": {"choice": [2, 16]}})
    study = _study(seed=6)
    errors = []
    for _ in range(30):
        trial = study.ask()
        candidate = space.sample(trial)
        too_big = trial.params["pool"] == 16 and trial.params["stride_1"] == 4
        assert (candidate.spec is None) == too_big
        errors += [candidate.error] if candidate.error else []
    assert errors and all("pool=16" in e for e in errors)


def test_recipe_holds_fixed_and_sampled_training_values() -> None:
    training = {
        "epochs": 3,
        "schedule": "cosine",
        "nesterov": True,
        "lr": {"float": [0.01, 0.2], "log": True},
        "batch_size": {"choice": [64, 128]},
        "cutout": {"int": [0, 8], "step": 4},
    }
    space = _space({"layers": 1}, training)
    trial = _study(seed=7).ask()
    candidate = space.sample(trial)
    assert set(candidate.recipe) == set(training)
    assert candidate.recipe["epochs"] == 3 and candidate.recipe["schedule"] == "cosine"
    assert candidate.recipe["nesterov"] is True
    assert 0.01 <= candidate.recipe["lr"] <= 0.2
    assert candidate.recipe["batch_size"] in (64, 128)
    assert candidate.recipe["cutout"] in (0, 4, 8)
    assert set(trial.params) == {"lr", "batch_size", "cutout"}
    assert trial.distributions["lr"] == optuna.distributions.FloatDistribution(0.01, 0.2, log=True)
    for key in ("lr", "batch_size", "cutout"):
        assert candidate.recipe[key] == trial.params[key]


def test_architecture_defaults() -> None:
    candidate = SearchSpace.from_dict(
        {"architecture": {"layers": 2, "blocks": 1, "channels": 8}}
    ).sample(_study().ask())
    assert candidate.spec == make_spec(blocks=[1, 1], channels=[8, 8])
    assert candidate.recipe == {}


# ---------------------------------------------------------------------------------------------
# param_names


def test_param_names_lists_exactly_the_sampled_names() -> None:
    space = _space(
        {
            "layers": {"int": [1, 3]},
            "blocks": {"int": [1, 2], "per_layer": False},
            "channels": [8, {"choice": [16, 32]}, 64],
            "kernel": {"choice": [3, 5]},
            "stride": [1, {"choice": [1, 2]}, 2],
            "pool": {"choice": [1, "global"]},
            "num_classes": 10,
        },
        {"epochs": 2, "lr": {"float": [0.01, 0.1]}, "tta": {"choice": [True, False]}},
    )
    assert space.param_names() == [
        "layers",
        "blocks",
        "channels_2",
        "kernel_1",
        "kernel_2",
        "kernel_3",
        "stride_2",
        "pool",
        "lr",
        "tta",
    ]
    # With the largest layer count, a sample uses exactly these names.
    study = _study(seed=8)
    names: set[str] = set()
    for _ in range(30):
        trial = study.ask()
        space.sample(trial)
        names |= set(trial.params)
    assert names == set(space.param_names())


def test_param_names_empty_for_a_fully_fixed_space() -> None:
    space = _space({"layers": 2}, {"lr": 0.1})
    assert space.param_names() == []
    trial = _study().ask()
    space.sample(trial)
    assert trial.params == {}


# ---------------------------------------------------------------------------------------------
# params_of: enqueue round trips and errors


def _round_trip(space: SearchSpace, params: dict[str, Any]) -> Any:
    study = _study(seed=9)
    study.enqueue_trial(params)
    trial = study.ask()
    candidate = space.sample(trial)
    for name, value in params.items():
        assert trial.params[name] == value
    return candidate


@pytest.mark.parametrize("study_name", ["b453-space", "paper-reproduce"])
def test_shipped_enqueues_sample_back_the_named_architecture(study_name: str) -> None:
    config = load_config(study_name)
    assert config.enqueue
    for label, params in config.enqueue:
        assert set(params) <= set(config.space.param_names())
        candidate = _round_trip(config.space, params)
        assert candidate.spec == architecture(label), label


def test_b453_enqueue_carries_the_training_values() -> None:
    config = load_config("b453-space")
    label, params = config.enqueue[0]
    candidate = _round_trip(config.space, params)
    assert label == "ResNet26-B453"
    assert candidate.recipe["lr"] == 0.1 and candidate.recipe["batch_size"] == 128
    assert candidate.recipe["nesterov"] is False and candidate.recipe["tta"] is True
    assert candidate.recipe["epochs"] == 40  # fixed in the space, not a parameter


@pytest.mark.parametrize(
    "spec",
    [
        make_spec(blocks=[1], channels=[8], pool="global", stem_channels=8),
        make_spec(
            blocks=[2, 1],
            channels=[16, 32],
            kernels=[5, 3],
            strides=[2, 4],
            pool=2,
            stem_channels=8,
        ),
        make_spec(blocks=[1, 2], channels=[32, 8], strides=[1, 2], pool="global", stem_channels=8),
    ],
)
def test_params_of_round_trip_on_smoke_space(spec: Any) -> None:
    space = load_config("smoke").space
    params = space.params_of(spec, {"lr": 0.05})
    assert params["lr"] == 0.05 and params["layers"] == spec.num_layers
    candidate = _round_trip(space, params)
    assert candidate.spec == spec
    assert candidate.recipe["lr"] == 0.05 and candidate.recipe["epochs"] == 3


def test_params_of_shared_key() -> None:
    space = _space({"layers": {"int": [1, 3]}, "blocks": {"int": [1, 4], "per_layer": False}})
    spec = make_spec(blocks=[3, 3], channels=[8, 8], pool="global", stem_channels=8)
    params = space.params_of(spec, {})
    assert params == {"layers": 2, "blocks": 3}
    assert _round_trip(space, params).spec == spec
    with pytest.raises(SpaceError) as info:
        space.params_of(
            make_spec(blocks=[1, 2], channels=[8, 8], pool="global", stem_channels=8), {}
        )
    assert info.value.key == "blocks" and "shares one blocks" in str(info.value)


B453 = architecture("ResNet26-B453")
_B453_RECIPE = {"batch_size": 128, "lr": 0.1}


@pytest.mark.parametrize(
    ("spec", "recipe", "key", "fragment"),
    [
        (
            make_spec(blocks=[4, 5, 3], channels=[64, 100, 256], strides=[1, 2, 4]),
            _B453_RECIPE,
            "channels_2",
            "100 is outside",
        ),
        (
            make_spec(blocks=[1] * 5, channels=[64] * 5, strides=[1, 2, 2, 2, 1], pool=1),
            _B453_RECIPE,
            "layers",
            "5 is outside the space (int in [2, 4])",
        ),
        (
            make_spec(blocks=[4], channels=[64]),
            _B453_RECIPE,
            "layers",
            "1 is outside",
        ),
        (
            make_spec(blocks=[4, 7, 3], channels=[64, 128, 256], strides=[1, 2, 4]),
            _B453_RECIPE,
            "blocks_2",
            "7 is outside the space (int in [1, 6])",
        ),
        (
            make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4], kernels=7),
            _B453_RECIPE,
            "kernel_1",
            "choice of [3, 5]",
        ),
        (
            make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 1, 4]),
            _B453_RECIPE,
            "stride_2",
            "outside",
        ),
        (
            make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4], pool=3),
            _B453_RECIPE,
            "pool",
            "outside",
        ),
        (
            make_spec(
                blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4], stem_channels=32
            ),
            _B453_RECIPE,
            "stem_channels",
            "fixed at 64",
        ),
        (
            make_spec(
                blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4], num_classes=100
            ),
            _B453_RECIPE,
            "num_classes",
            "fixed at 10",
        ),
        (B453, {"epochs": 200}, "epochs", "fixed at 40"),
        (B453, {"schedule": "paper"}, "schedule", "fixed at 'cosine'"),
        (B453, {"lr": 2.0}, "lr", "float in [0.02, 0.8]"),
        (B453, {"batch_size": 100}, "batch_size", "outside"),
        (B453, {"nesterov": 1}, "nesterov", "outside"),
        (B453, {"learning_rate": 0.1}, "learning_rate", "unknown key 'learning_rate'"),
        (B453, {"seed": 3}, "seed", "unknown key 'seed'"),
    ],
)
def test_params_of_names_the_value_outside_the_space(
    spec: Any, recipe: dict[str, Any], key: str, fragment: str
) -> None:
    space = load_config("b453-space").space
    with pytest.raises(SpaceError) as info:
        space.params_of(spec, recipe)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_params_of_leaves_out_fixed_values() -> None:
    space = load_config("b453-space").space
    params = space.params_of(B453, {"epochs": 40, "tta": True, "lr": 0.1})
    assert "epochs" not in params and "tta" not in params and "stem_channels" not in params
    assert params["lr"] == 0.1
    assert [params[f"channels_{i}"] for i in (1, 2, 3)] == [64, 128, 256]
    assert [params[f"stride_{i}"] for i in (1, 2, 3)] == [1, 2, 4]
    assert "blocks_4" not in params and "channels_4" not in params


def test_params_of_rejects_a_float_off_the_step_grid() -> None:
    space = _space({"layers": 1}, {"lr": {"float": [0.1, 0.5], "step": 0.1}})
    spec = make_spec(blocks=[1], channels=[8], pool="global", stem_channels=8)
    assert space.params_of(spec, {"lr": 0.3}) == {"lr": 0.3}
    with pytest.raises(SpaceError) as info:
        space.params_of(spec, {"lr": 0.15})
    assert info.value.key == "lr"


def test_params_of_rejects_a_bool_for_a_float_range() -> None:
    space = _space({"layers": 1}, {"label_smoothing": {"float": [0.0, 0.2]}})
    spec = make_spec(blocks=[1], channels=[8], pool="global", stem_channels=8)
    with pytest.raises(SpaceError) as info:
        space.params_of(spec, {"label_smoothing": False})
    assert info.value.key == "label_smoothing"


def test_int_range_contains_rejects_bools_and_off_grid_values() -> None:
    param = IntRange(0, 8, 4)
    assert param.contains(4) and param.contains(8)
    assert not param.contains(2) and not param.contains(False) and not param.contains(4.0)
    assert not param.contains(12)
