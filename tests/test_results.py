"""Results: the retrain command line (checked against the real CLI parser), export, best trials."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from model.architectures import architecture
from model.recipe import SCHEDULES, TrainConfig
from model.spec import ResNetSpec, make_spec, spec_from_dict
from search.cli import build_parser
from search.cli.common import spec_from_args as _spec_from_args
from search.flags import recipe_from_args as _recipe_from_args
from search.results import best_trials, export_config, read_exported, train_command
from tests.strategies import valid_specs

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY = make_spec(blocks=[1], channels=[8], pool="global", stem_channels=8).to_dict()
DEFAULTS = TrainConfig().to_dict()


def _parse(cmd: str) -> argparse.Namespace:
    argv = cmd.split()
    assert argv[:2] == ["optuna-search", "train"]
    args = build_parser().parse_args(argv[1:])
    assert args.command == "train"
    return args


def _flags(cmd: str) -> list[str]:
    return cmd.split()[2:]


def _expected_recipe(recipe: dict[str, Any], **override: Any) -> TrainConfig:
    """What ``train`` should run: the recipe over the defaults, without compile."""
    return TrainConfig.from_dict(
        {**DEFAULTS, **recipe, **override, "compile": False, "eval_batch_size": 1000}
    )


# ---------------------------------------------------------------------------------------------
# train_command


def test_minimal_command() -> None:
    assert train_command(TINY, {}) == (
        "optuna-search train --blocks 1 --channels 8 --strides 1 --kernel 3 "
        "--shortcut-kernel 1 --pool global --stem-channels 8"
    )


def test_recipe_defaults_are_left_out() -> None:
    base = train_command(TINY, {})
    assert train_command(TINY, DEFAULTS) == base
    assert (
        train_command(TINY, {"epochs": 200, "lr": 0.1, "schedule": "paper", "flip": True}) == base
    )
    assert train_command(TINY, {"weight_decay": 5e-4, "momentum": 0.9, "seed": 0}) == base
    cmd = train_command(TINY, {**DEFAULTS, "lr": 0.4, "batch_size": 512})
    assert _flags(cmd)[-4:] == ["--batch-size", "512", "--lr", "0.4"]


@pytest.mark.parametrize(
    ("recipe", "present", "absent"),
    [
        ({"nesterov": True}, ["--nesterov"], []),
        ({"nesterov": False}, [], ["--nesterov"]),
        ({"tta": True}, ["--tta"], []),
        ({"tta": False}, [], ["--tta"]),
        ({"flip": False}, ["--no-flip"], ["--flip"]),
        ({"flip": True}, [], ["--no-flip", "--flip"]),
        ({"compile": True}, [], ["--compile"]),
        ({"eval_batch_size": 250}, [], ["--eval-batch-size"]),
    ],
)
def test_bool_flags(recipe: dict[str, Any], present: list[str], absent: list[str]) -> None:
    flags = _flags(train_command(TINY, recipe))
    for flag in present:
        assert flags.count(flag) == 1
    for flag in absent:
        assert flag not in flags
    assert "True" not in flags and "False" not in flags


def test_value_flags_use_dashes() -> None:
    recipe = {
        "batch_size": 256,
        "weight_decay": 0.0001,
        "warmup_epochs": 0.5,
        "label_smoothing": 0.1,
        "ema_decay": 0.999,
        "crop_padding": 2,
        "cutout": 12,
        "schedule": "cosine",
        "seed": 7,
    }
    flags = _flags(train_command(TINY, recipe))
    assert dict(zip(flags[::2], flags[1::2], strict=True)) == {
        "--blocks": "1",
        "--channels": "8",
        "--strides": "1",
        "--kernel": "3",
        "--shortcut-kernel": "1",
        "--pool": "global",
        "--stem-channels": "8",
        "--batch-size": "256",
        "--weight-decay": "0.0001",
        "--warmup-epochs": "0.5",
        "--label-smoothing": "0.1",
        "--ema-decay": "0.999",
        "--crop-padding": "2",
        "--cutout": "12",
        "--schedule": "cosine",
        "--seed": "7",
    }


def test_single_and_per_layer_kernels() -> None:
    same = make_spec(blocks=[1, 1], channels=[8, 16], kernels=5, shortcut_kernels=3).to_dict()
    flags = _flags(train_command(same, {}))
    assert flags[flags.index("--kernel") + 1] == "5"
    assert flags[flags.index("--shortcut-kernel") + 1] == "3"
    mixed = make_spec(
        blocks=[1, 1, 1], channels=[8, 16, 32], kernels=[5, 3, 3], shortcut_kernels=[1, 1, 3]
    ).to_dict()
    flags = _flags(train_command(mixed, {}))
    assert flags[flags.index("--kernel") + 1] == "5,3,3"
    assert flags[flags.index("--shortcut-kernel") + 1] == "1,1,3"


def test_pool_stem_and_classes() -> None:
    b453 = architecture("ResNet26-B453").to_dict()
    cmd = train_command(b453, {})
    assert cmd == (
        "optuna-search train --blocks 4,5,3 --channels 64,128,256 --strides 1,2,4 --kernel 3 "
        "--shortcut-kernel 1 --pool 4"
    )
    other = make_spec(blocks=[2], channels=[16], pool=2, stem_channels=16, num_classes=100)
    flags = _flags(train_command(other.to_dict(), {}))
    assert flags[flags.index("--pool") + 1] == "2"
    assert flags[flags.index("--stem-channels") + 1] == "16"
    assert flags[flags.index("--num-classes") + 1] == "100"


def test_epochs_override() -> None:
    flags = _flags(train_command(TINY, {"epochs": 40, "lr": 0.2}, epochs=600))
    assert flags.count("--epochs") == 1 and flags[flags.index("--epochs") + 1] == "600"
    flags = _flags(train_command(TINY, {"epochs": 40}, epochs=200))  # the default: left out
    assert "--epochs" not in flags
    flags = _flags(train_command(TINY, {"epochs": 40}))
    assert flags[flags.index("--epochs") + 1] == "40"


@pytest.mark.parametrize(
    ("data", "tail"),
    [
        (None, []),
        ({}, []),
        (
            {"dataset": "synthetic", "data_dir": "data", "val_size": 200},
            ["--dataset", "synthetic", "--val-size", "200"],
        ),
        ({"dataset": "cifar10", "data_dir": "data", "val_size": 5000}, ["--data-dir", "data"]),
        (
            {"dataset": "cifar10", "data_dir": "/shared/cifar.tar.gz", "val_size": 1000},
            ["--data-dir", "/shared/cifar.tar.gz", "--val-size", "1000"],
        ),
        ({"dataset": "cifar10", "val_size": 5000}, []),
    ],
)
def test_data_settings(data: dict[str, Any] | None, tail: list[str]) -> None:
    cmd = train_command(TINY, {"lr": 0.05}, data=data)
    flags = _flags(cmd)
    assert flags[flags.index("0.05") + 1 :] == tail
    args = _parse(cmd)
    data = data or {}
    assert args.dataset == data.get("dataset", "cifar10")
    assert args.val_size == data.get("val_size", 5000)
    if args.dataset == "cifar10":
        assert args.data_dir == data.get("data_dir", "data")


ROUND_TRIP = [
    (TINY, {}),
    (architecture("ResNet26-B453").to_dict(), DEFAULTS),
    (
        architecture("ResNet26-B453-P8").to_dict(),
        {
            "epochs": 40,
            "batch_size": 256,
            "lr": 0.31,
            "nesterov": True,
            "weight_decay": 2.5e-4,
            "schedule": "cosine",
            "warmup_epochs": 1.5,
            "label_smoothing": 0.1,
            "cutout": 8,
            "tta": True,
            "compile": True,
        },
    ),
    (
        make_spec(
            blocks=[2, 1, 3],
            channels=[16, 48, 96],
            kernels=[5, 3, 7],
            shortcut_kernels=[3, 1, 1],
            strides=[2, 2, 1],
            pool="global",
            stem_channels=24,
            num_classes=100,
        ).to_dict(),
        {
            "flip": False,
            "momentum": 0.0,
            "ema_decay": 0.9995,
            "crop_padding": 0,
            "schedule": "linear",
            "seed": 12,
            "lr": 1e-05,
            "weight_decay": 0.0,
        },
    ),
]


@pytest.mark.parametrize(("spec", "recipe"), ROUND_TRIP)
def test_command_parses_back_to_the_same_architecture_and_recipe(
    spec: dict[str, Any], recipe: dict[str, Any]
) -> None:
    args = _parse(train_command(spec, recipe, data={"dataset": "synthetic", "val_size": 300}))
    assert _spec_from_args(args) == spec_from_dict(spec)
    assert _recipe_from_args(args) == _expected_recipe(recipe)
    assert args.dataset == "synthetic" and args.val_size == 300


def test_epochs_override_parses_back() -> None:
    recipe = {"epochs": 40, "lr": 0.2, "schedule": "cosine"}
    args = _parse(train_command(TINY, recipe, epochs=600))
    assert _recipe_from_args(args) == _expected_recipe(recipe, epochs=600)


@st.composite
def _recipes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid recipe: some fields of TrainConfig, the rest left to the defaults."""
    epochs = draw(st.integers(1, 600))
    momentum = draw(st.one_of(st.just(0.0), st.just(0.9), st.floats(0, 0.99)))
    full = {
        "epochs": epochs,
        "batch_size": draw(st.integers(1, 4096)),
        "lr": draw(st.floats(1e-6, 4.0)),
        "momentum": momentum,
        "nesterov": draw(st.booleans()) and momentum > 0,
        "weight_decay": draw(st.floats(0, 1e-2)),
        "schedule": draw(st.sampled_from(SCHEDULES)),
        "warmup_epochs": draw(st.floats(0, epochs)),
        "label_smoothing": draw(st.floats(0, 0.99)),
        "ema_decay": draw(st.floats(0, 0.9999)),
        "crop_padding": draw(st.integers(0, 8)),
        "flip": draw(st.booleans()),
        "cutout": draw(st.integers(0, 32)),
        "tta": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "compile": draw(st.booleans()),
    }
    keys = draw(st.sets(st.sampled_from(sorted(full))))
    recipe = {k: full[k] for k in sorted(keys)}
    try:
        _expected_recipe(recipe)
    except ValueError:
        assume(False)
    return recipe


@settings(max_examples=150, deadline=None)
@given(spec=valid_specs(max_layers=5, max_width=600), recipe=_recipes(), epochs=st.integers(0, 9))
def test_any_command_parses_back(spec: ResNetSpec, recipe: dict[str, Any], epochs: int) -> None:
    override = {"epochs": epochs} if epochs else {}
    try:
        expected = _expected_recipe(recipe, **override)
    except ValueError:  # warm-up longer than the overriding epochs
        assume(False)
    args = _parse(train_command(spec.to_dict(), recipe, epochs=epochs or None))
    assert _spec_from_args(args) == spec
    assert _recipe_from_args(args) == expected


# ---------------------------------------------------------------------------------------------
# export_config / read_exported


def _trial(
    spec: ResNetSpec, recipe: dict[str, Any], value: float | None = 0.9, **kwargs: Any
) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        value=value,
        params={"lr": recipe.get("lr", 0.1)},
        distributions={"lr": optuna.distributions.FloatDistribution(0.01, 1.0, log=True)},
        user_attrs={
            "spec": spec.to_dict(),
            "recipe": recipe,
            "val_accuracy": value,
            "params": 1234,
        },
        **kwargs,
    )


def test_export_round_trip(tmp_path: Path) -> None:
    spec = architecture("ResNet26-B453-P2")
    recipe = {**DEFAULTS, "lr": 0.25, "weight_decay": 1e-05, "tta": True, "compile": True}
    trial = _trial(spec, recipe, value=0.9412)
    path = tmp_path / "best.yaml"
    export_config(trial, "b453-space", path)
    arch, training = read_exported(path)
    assert spec_from_dict(arch) == spec
    assert "compile" not in training
    assert training == {k: v for k, v in recipe.items() if k != "compile"}
    assert TrainConfig.from_dict(training) == _expected_recipe(recipe)
    source = yaml.safe_load(path.read_text())["source"]
    assert source["study"] == "b453-space" and source["trial"] == trial.number
    assert source["val_accuracy"] == 0.9412 and source["params"] == 1234


def test_exported_file_feeds_train_config_flag(tmp_path: Path) -> None:
    spec = make_spec(blocks=[1, 2], channels=[16, 32], kernels=[5, 3], pool="global")
    recipe = {**DEFAULTS, "epochs": 30, "schedule": "cosine", "nesterov": True}
    path = tmp_path / "exported.yaml"
    export_config(_trial(spec, recipe), "s", path)
    args = build_parser().parse_args(["train", "--config", str(path), "--lr", "0.3"])
    arch, training = read_exported(args.config)
    assert spec_from_dict(arch) == spec
    assert _recipe_from_args(args, training) == _expected_recipe(recipe, lr=0.3)


@pytest.mark.parametrize("text", ["just text\n", "- 1\n", "training: {lr: 0.1}\n"])
def test_read_exported_rejects_other_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="not an exported config"):
        read_exported(path)


def test_read_exported_without_training(tmp_path: Path) -> None:
    path = tmp_path / "arch.yaml"
    path.write_text("architecture: {blocks: [1], channels: [8]}\n")
    assert read_exported(path) == ({"blocks": [1], "channels": [8]}, {})


# ---------------------------------------------------------------------------------------------
# best_trials


def _add(study: optuna.Study, value: float | list[float], constraint: float | None) -> None:
    kwargs: dict[str, Any] = {"values": value, "value": None} if isinstance(value, list) else {}
    kwargs.setdefault("value", value)
    if constraint is not None:
        kwargs["constraints"] = {"params": constraint}
    study.add_trial(_trial(architecture("ResNet10"), DEFAULTS, **kwargs))


def test_best_trial_is_the_best_feasible_one() -> None:
    study = optuna.create_study(direction="maximize")
    _add(study, 0.97, 0.25)  # best value, but over budget
    _add(study, 0.91, -0.01)
    _add(study, 0.95, -0.2)
    _add(study, 0.99, 1.0)  # invalid
    best = best_trials(study)
    assert [t.number for t in best] == [2]
    assert best[0].value == 0.95


def test_best_trial_without_constraints() -> None:
    study = optuna.create_study(direction="maximize")
    _add(study, 0.5, None)
    _add(study, 0.7, None)
    assert [t.value for t in best_trials(study)] == [0.7]


def test_no_completed_trial_gives_empty_list() -> None:
    study = optuna.create_study(direction="maximize")
    assert best_trials(study) == []
    study.ask()  # a running trial is not completed
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    assert best_trials(study) == []


def test_only_infeasible_trials_gives_empty_list() -> None:
    study = optuna.create_study(direction="maximize")
    _add(study, 0.9, 0.5)
    _add(study, 0.8, 1.0)
    assert best_trials(study) == []


def test_pareto_set_sorted_by_accuracy() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    _add(study, [0.80, 1e5], -0.9)
    _add(study, [0.95, 4e6], -0.1)
    _add(study, [0.90, 1e6], -0.5)
    _add(study, [0.85, 2e6], -0.4)  # dominated by the 0.90 trial
    _add(study, [0.99, 6e6], 0.2)  # over budget
    best = best_trials(study)
    assert [t.values[0] for t in best] == [0.95, 0.90, 0.80]
    assert best_trials(optuna.create_study(directions=["maximize", "minimize"])) == []
