"""Study configs: shipped files load, bad files give one one-line error naming file and key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from model.architectures import NAMED_ARCHITECTURES
from search.budget import Budget, survey
from search.config import (
    PROJECT_CONFIGS,
    ConfigError,
    StudyConfig,
    check_feasible,
    find_config,
    load_config,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

SHIPPED = sorted(PROJECT_CONFIGS.glob("*.yaml"))

BASE = """\
name: tiny
trials: 3
budget: {max_params: 50000}
sampler: {name: random, seed: 0}
data: {dataset: synthetic, val_size: 100}
space:
  architecture:
    layers: {int: [1, 2]}
    blocks: {int: [1, 2]}
    channels: {choice: [8, 16]}
    stem_channels: 8
    pool: global
  training:
    epochs: 3
    lr: {float: [0.01, 0.2], log: true}
"""
"""A small valid config; the bad ones below are edits of it."""


def _edit(old: str, new: str) -> str:
    assert old in BASE, old  # an edit that matches nothing would test the valid config
    return BASE.replace(old, new, 1)


def _write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path: Path | str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    error = info.value
    assert "\n" not in str(error)
    assert str(error).startswith(f"{path}: ")
    return error


# ---------------------------------------------------------------------------------------------
# The shipped configs


def test_the_project_ships_configs() -> None:
    assert {p.stem for p in SHIPPED} >= {"b453-space", "paper-reproduce", "pareto-wide", "smoke"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_loads_and_makes_sense(path: Path) -> None:
    config = load_config(str(path))
    assert isinstance(config, StudyConfig)
    assert config.name == path.stem and config.path == path
    assert config.raw == yaml.safe_load(path.read_text())
    assert config.objectives[0] == "val_accuracy"
    assert config.directions == ["maximize"] + ["minimize"] * (len(config.objectives) - 1)
    assert config.multi_objective == (len(config.objectives) > 1)
    assert config.trials is None or config.trials > 0
    assert config.budget.max_params == 5_000_000 or path.stem in ("smoke", "cpu-tiny")  # CPU-sized
    if config.multi_objective:
        assert config.pruner.name == "none"
    assert config.pruner.max_epochs == max(config.space.training["epochs"].candidates())
    assert config.data.val_size > 0
    assert config.description
    names = set(config.space.param_names())
    assert names and "layers" in names
    for label, params in config.enqueue:
        assert label and set(params) <= names
    candidate = config.space.sample(
        optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    )
    assert candidate.spec is not None or candidate.error


def test_shipped_config_details() -> None:
    smoke = load_config("smoke")
    assert smoke.data.dataset == "synthetic" and smoke.data.synthetic_size == (600, 200)
    assert smoke.data.val_size == 200 and smoke.budget.max_params == 30_000 and smoke.trials == 4
    assert smoke.pruner.name == "asha" and smoke.pruner.reduction_factor == 2
    assert smoke.pruner.max_epochs == 3
    assert smoke.enqueue[0][0] == "known-good tiny net"
    assert smoke.enqueue[0][1] == {
        "layers": 1,
        "blocks_1": 1,
        "channels_1": 16,
        "kernel_1": 3,
        "stride_1": 1,
        "pool": "global",
        "lr": 0.1,
    }

    b453 = load_config("b453-space")
    assert b453.trials == 200 and b453.sampler.name == "tpe" and b453.sampler.n_startup_trials == 20
    assert (b453.pruner.name, b453.pruner.min_epochs, b453.pruner.max_epochs) == ("asha", 5, 40)
    assert b453.data.dataset == "cifar10" and b453.data.data_dir == "data"
    assert [label for label, _ in b453.enqueue] == ["ResNet26-B453", "ResNet26-B453-P8"]

    paper = load_config("paper-reproduce")
    assert paper.trials == 9 and paper.sampler.name == "random" and paper.sampler.seed == 0
    assert paper.pruner.name == "none" and paper.pruner.max_epochs == 200
    assert sorted(label for label, _ in paper.enqueue) == sorted(NAMED_ARCHITECTURES)

    pareto = load_config("pareto-wide")
    assert pareto.objectives == ("val_accuracy", "params")
    assert pareto.directions == ["maximize", "minimize"]
    assert pareto.pruner.name == "none" and pareto.enqueue == ()


def test_loading_by_name_equals_loading_by_path() -> None:
    by_name = load_config("smoke")
    by_path = load_config(str(PROJECT_CONFIGS / "smoke.yaml"))
    assert by_name.raw == by_path.raw and by_name.enqueue == by_path.enqueue
    assert by_name.space == by_path.space


def test_base_config_fields(tmp_path: Path) -> None:
    config = load_config(str(_write(tmp_path, BASE)))
    assert config.name == "tiny" and config.trials == 3 and config.budget.max_params == 50_000
    assert config.budget.max_macs is None and config.timeout is None and config.storage is None
    assert config.sampler.name == "random" and config.sampler.seed == 0
    assert config.pruner.name == "asha" and config.pruner.max_epochs == 3
    assert config.data.dataset == "synthetic" and config.data.val_size == 100
    assert config.objectives == ("val_accuracy",) and config.enqueue == ()


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    config = load_config(str(_write(tmp_path, _edit("name: tiny\n", ""), "my-study.yaml")))
    assert config.name == "my-study"


def test_multi_objective_defaults_to_no_pruner(tmp_path: Path) -> None:
    config = load_config(str(_write(tmp_path, BASE + "objectives: [val_accuracy, macs]\n")))
    assert config.pruner.name == "none" and config.directions == ["maximize", "minimize"]
    assert config.multi_objective


# ---------------------------------------------------------------------------------------------
# find_config


def test_find_config_by_name_and_by_path(tmp_path: Path) -> None:
    path = find_config("smoke")
    assert path.name == "smoke.yaml" and path.is_file()
    own = _write(tmp_path, BASE)
    assert find_config(str(own)) == own
    other = _write(tmp_path, BASE, "config.txt")  # any existing file, whatever its suffix
    assert find_config(str(other)) == other


def test_find_config_prefers_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "study_configs").mkdir()
    mine = _write(tmp_path / "study_configs", BASE, "mine.yml")
    shadow = _write(tmp_path / "study_configs", BASE, "smoke.yaml")
    monkeypatch.chdir(tmp_path)
    assert find_config("mine").resolve() == mine.resolve()
    assert find_config("smoke").resolve() == shadow.resolve()
    assert find_config("b453-space") == PROJECT_CONFIGS / "b453-space.yaml"


def test_unknown_name_lists_the_known_studies() -> None:
    with pytest.raises(ConfigError) as info:
        find_config("nothing-like-this")
    message = str(info.value)
    assert info.value.key == "(study)" and "\n" not in message
    assert message.startswith("nothing-like-this: ")
    for stem in ("b453-space", "paper-reproduce", "pareto-wide", "smoke"):
        assert stem in message


def test_misspelt_name_suggests_the_study() -> None:
    with pytest.raises(ConfigError, match="did you mean 'smoke'"):
        find_config("smok")


def test_missing_yaml_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(str(missing))
    assert info.value.key == "(file)" and str(info.value).startswith(str(missing))
    assert "no such study config file" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Bad configs: one ConfigError each, one line, file path first, the dotted key named

_ENQUEUE_NET = "architecture: {blocks: [1], channels: [8], pool: global, stem_channels: 8}"


def _enqueue(*entries: str) -> str:
    return BASE + "enqueue:\n" + "".join(f"  - {e}\n" for e in entries)


BAD: list[tuple[str, str, str, str]] = [
    ("yaml-syntax", "trials: 3\nname: [a, b\nspace: x\n", "line 3", "not valid YAML"),
    ("yaml-indent", "trials: 3\nbudget:\n  max_params: 5\n   bad: 1\n", "line 4", "not valid YAML"),
    ("top-level-list", "- 1\n- 2\n", "(top level)", "must be a mapping"),
    ("top-level-scalar", "just words\n", "(top level)", "must be a mapping"),
    ("empty-file", "", "space", "is required"),
    ("no-space", "trials: 3\n", "space", "is required"),
    ("trails", BASE + "trails: 10\n", "trails", "did you mean 'trials'"),
    ("trials-type", _edit("trials: 3", 'trials: "ten"'), "trials", "positive integer"),
    ("trials-zero", _edit("trials: 3", "trials: 0"), "trials", "positive integer"),
    ("trials-bool", _edit("trials: 3", "trials: true"), "trials", "positive integer"),
    ("max-params", _edit("max_params: 50000", "max_params: -1"), "budget.max_params", "positive"),
    ("max-params-float", _edit("50000", "5.0e4"), "budget.max_params", "positive integer"),
    (
        "budget-key",
        _edit("max_params: 50000", "max_param: 50000"),
        "budget.max_param",
        "'max_params'",
    ),
    ("budget-type", _edit("{max_params: 50000}", "5000"), "budget", "must be a mapping"),
    ("sampler-name", _edit("name: random", "name: foo"), "sampler.name", "one of tpe, random"),
    ("sampler-seed", _edit("seed: 0", "seed: zero"), "sampler.seed", "must be int"),
    ("name", _edit("name: tiny", "name: two words"), "name", "letters, digits"),
    (
        "objective",
        BASE + "objectives: [val_accuracy, flops]\n",
        "objectives",
        "unknown key 'flops'",
    ),
    ("objective-order", BASE + "objectives: [params]\n", "objectives", "start with val_accuracy"),
    (
        "objective-twice",
        BASE + "objectives: [val_accuracy, params, params]\n",
        "objectives",
        "each once",
    ),
    ("objectives-empty", BASE + "objectives: []\n", "objectives", "must be a list"),
    ("space-key", _edit("  training:\n", "  trainig:\n"), "space.trainig", "'training'"),
    (
        "arch-key",
        _edit("    pool: global\n", "    pol: global\n"),
        "space.architecture.pol",
        "did you mean 'pool'",
    ),
    (
        "training-key",
        _edit("    epochs: 3\n", "    epoch: 3\n"),
        "space.training.epoch",
        "did you mean 'epochs'",
    ),
    (
        "empty-choice",
        _edit("{choice: [8, 16]}", "{choice: []}"),
        "space.architecture.channels.choice",
        "non-empty",
    ),
    (
        "list-no-choice",
        _edit("pool: global", "pool: [2, 4]"),
        "space.architecture.pool",
        "ambiguous",
    ),
    ("training-list", _edit("epochs: 3", "epochs: [3, 5]"), "space.training.epochs", "ambiguous"),
    (
        "short-per-layer",
        _edit("{choice: [8, 16]}", "[8]"),
        "space.architecture.channels",
        "1 per-layer entries but up to 2",
    ),
    (
        "option-typo",
        _edit("log: true}", "lgo: true}"),
        "space.training.lr.lgo",
        "did you mean 'log'",
    ),
    (
        "low-high",
        _edit("[0.01, 0.2]", "[0.2, 0.01]"),
        "space.training.lr.float",
        "greater than high",
    ),
    ("log-zero", _edit("[0.01, 0.2]", "[0, 0.2]"), "space.training.lr.float", "low > 0"),
    (
        "epochs-float",
        _edit("epochs: 3", "epochs: 2.5"),
        "space.training.epochs",
        "2.5 is not a valid epochs",
    ),
    (
        "epochs-range",
        _edit("epochs: 3", "epochs: {float: [2, 5]}"),
        "space.training.epochs",
        "takes integers",
    ),
    (
        "epochs-bool-choice",
        _edit("epochs: 3", "epochs: {choice: [3, true]}"),
        "space.training.epochs",
        "True is not",
    ),
    ("epochs-zero", _edit("epochs: 3", "epochs: 0"), "space.training.epochs", "at least 1"),
    (
        "nesterov-str",
        BASE + '    nesterov: "yes"\n',
        "space.training.nesterov",
        "'yes' is not a valid nesterov",
    ),
    ("tta-int", BASE + "    tta: 1\n", "space.training.tta", "not a valid tta"),
    (
        "lr-bool",
        _edit("lr: {float: [0.01, 0.2], log: true}", "lr: true"),
        "space.training.lr",
        "not a valid lr",
    ),
    (
        "schedule-range",
        BASE + "    schedule: {int: [1, 2]}\n",
        "space.training.schedule",
        "takes str values",
    ),
    (
        "schedule-step",
        BASE + "    schedule: step\n",
        "space.training.schedule",
        "one of cosine, linear, paper",
    ),
    (
        "schedule-choice",
        BASE + "    schedule: {choice: [cosine, step]}\n",
        "space.training.schedule",
        "'step'",
    ),
    (
        "label-smoothing",
        BASE + "    label_smoothing: 1.5\n",
        "space.training.label_smoothing",
        "in [0, 1)",
    ),
    (
        "label-smoothing-range",
        BASE + "    label_smoothing: {float: [0.0, 1.0]}\n",
        "space.training.label_smoothing",
        "in [0, 1)",
    ),
    ("momentum", BASE + "    momentum: 1.0\n", "space.training.momentum", "in [0, 1)"),
    (
        "no-fit",
        _edit("max_params: 50000", "max_params: 100"),
        "budget.max_params",
        "no configuration fits",
    ),
    (
        "no-fit-macs",
        _edit("{max_params: 50000}", "{max_params: 50000, max_macs: 1000}"),
        "budget.max_macs",
        "no configuration fits",
    ),
    (
        "no-valid-arch",
        _edit("pool: global", "pool: 64"),
        "space.architecture",
        "no configuration of the space is a valid architecture",
    ),
    (
        "multi-pruner",
        BASE + "objectives: [val_accuracy, params]\npruner: {name: asha}\n",
        "pruner.name",
        "multi-objective",
    ),
    ("pruner-name", BASE + "pruner: {name: sha}\n", "pruner.name", "one of asha"),
    (
        "pruner-key",
        BASE + "pruner: {name: asha, min_epoch: 1}\n",
        "pruner.min_epoch",
        "did you mean 'min_epochs'",
    ),
    (
        "pruner-max-epochs",
        BASE + "pruner: {name: asha, max_epochs: 10}\n",
        "pruner.max_epochs",
        "differs from the largest training epochs (3)",
    ),
    (
        "pruner-min-epochs",
        BASE + "pruner: {name: asha, min_epochs: 5}\n",
        "pruner.min_epochs",
        "exceeds the training epochs (3)",
    ),
    (
        "pruner-rf",
        BASE + "pruner: {name: asha, reduction_factor: 1}\n",
        "pruner.reduction_factor",
        ">= 2",
    ),
    ("enqueue-list", BASE + "enqueue: {arch: ResNet10}\n", "enqueue", "must be a list"),
    ("enqueue-both", _enqueue(f"{{arch: ResNet10, {_ENQUEUE_NET}}}"), "enqueue[0]", "either arch"),
    ("enqueue-neither", _enqueue("{label: x}"), "enqueue[0]", "either arch"),
    (
        "enqueue-outside",
        _enqueue("arch: ResNet18"),
        "enqueue[0] (ResNet18)",
        "layers: 4 is outside",
    ),
    (
        "enqueue-unknown-arch",
        _enqueue("arch: ResNet99"),
        "enqueue[0].arch",
        "unknown architecture 'ResNet99'",
    ),
    (
        "enqueue-key",
        _enqueue("{arch: ResNet10, trainig: {}}"),
        "enqueue[0].trainig",
        "did you mean 'training'",
    ),
    (
        "enqueue-arch-key",
        _enqueue("{architecture: {blocks: [1], channel: [8]}}"),
        "enqueue[0].architecture.channel",
        "did you mean 'channels'",
    ),
    (
        "enqueue-bad-spec",
        _enqueue("{architecture: {blocks: [1], channels: [8], kernels: 4}}"),
        "enqueue[0].architecture",
        "kernels[0]=4",
    ),
    (
        "enqueue-lr",
        _enqueue(f"{{label: net, {_ENQUEUE_NET}, training: {{lr: 1.0}}}}"),
        "enqueue[0] (net)",
        "lr: 1.0 is outside",
    ),
    (
        "enqueue-epochs",
        _enqueue(f"{{label: net, {_ENQUEUE_NET}, training: {{epochs: 5}}}}"),
        "enqueue[0] (net)",
        "epochs: 5 is outside",
    ),
    (
        "enqueue-training-key",
        _enqueue(f"{{label: net, {_ENQUEUE_NET}, training: {{lrr: 0.1}}}}"),
        "enqueue[0].training.lrr",
        "did you mean 'lr'",
    ),
    (
        "enqueue-second",
        _enqueue(f"{{{_ENQUEUE_NET}}}", "arch: ResNet10"),
        "enqueue[1] (ResNet10)",
        "outside",
    ),
    ("timeout", BASE + "timeout: soon\n", "timeout", "not a duration"),
    ("timeout-zero", BASE + "timeout: 0\n", "timeout", "not a duration"),
    ("timeout-negative", BASE + "timeout: -5\n", "timeout", "not a duration"),
    ("timeout-unit", BASE + "timeout: 3w\n", "timeout", "not a duration"),
    (
        "val-size-zero",
        _edit("val_size: 100", "val_size: 0"),
        "data.val_size",
        "at least 1 validation image",
    ),
    ("val-size-negative", _edit("val_size: 100", "val_size: -1"), "data.val_size", ">= 0"),
    (
        "dataset",
        _edit("dataset: synthetic", "dataset: imagenet"),
        "data.dataset",
        "cifar10 or synthetic",
    ),
    (
        "synthetic-size",
        _edit("val_size: 100}", "val_size: 100, synthetic_size: [600]}"),
        "data.synthetic_size",
        "[train, test]",
    ),
    (
        "data-key",
        _edit("val_size: 100}", "val_size: 100, datadir: x}"),
        "data.datadir",
        "did you mean 'data_dir'",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_gives_one_line_error_naming_the_key(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    path = _write(tmp_path, text)
    error = _error(path)
    assert error.key == key
    assert error.path == str(path)
    assert str(error).startswith(f"{path}: {key}: ")
    assert fragment in str(error)


def test_bad_case_ids_are_unique() -> None:
    assert len({c[0] for c in BAD}) == len(BAD)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90m", 5400.0),
        ("2d", 172_800.0),
        ("1.5h", 5400.0),
        ("45s", 45.0),
        ("600", 600.0),
        ("7200.5", 7200.5),
        ('"600"', 600.0),  # text, as the command line's --timeout passes it
        ("null", None),
    ],
)
def test_timeout(tmp_path: Path, value: str, seconds: float | None) -> None:
    config = load_config(str(_write(tmp_path, BASE + f"timeout: {value}\n")))
    assert config.timeout == seconds


def test_valid_enqueue_entries(tmp_path: Path) -> None:
    text = BASE + (
        f"enqueue:\n  - {{{_ENQUEUE_NET}, training: {{lr: 0.05, epochs: 3}}}}\n"
        "  - {label: two, architecture: {blocks: [2, 1], channels: [16, 8], pool: global,"
        " stem_channels: 8}}\n"
    )
    config = load_config(str(_write(tmp_path, text)))
    assert config.enqueue == (
        (
            "ResNet4-B1-C8-Pglobal-stem8",
            {"layers": 1, "blocks_1": 1, "channels_1": 8, "lr": 0.05},
        ),
        (
            "two",
            {"layers": 2, "blocks_1": 2, "blocks_2": 1, "channels_1": 16, "channels_2": 8},
        ),
    )


# ---------------------------------------------------------------------------------------------
# check_feasible


def test_check_feasible_accepts_a_space_where_only_some_configurations_fit(
    tmp_path: Path,
) -> None:
    text = _edit("{choice: [8, 16]}", "{choice: [8, 256]}")
    text = text.replace("max_params: 50000", "max_params: 20000")
    config = load_config(str(_write(tmp_path, text)))
    s = survey(config.space, n=100, budget=config.budget, seed=0)
    assert s.feasible > 0 and s.over_budget > 0  # really only some fit
    check_feasible(config)  # does not raise


def test_check_feasible_follows_the_budget(tmp_path: Path) -> None:
    config = load_config(str(_write(tmp_path, BASE)))
    s = survey(config.space, n=200, budget=Budget(10**9), seed=1)
    smallest_params, smallest_macs = min(s.params), min(s.macs)
    check_feasible(dataclasses.replace(config, budget=Budget(smallest_params)))
    with pytest.raises(ConfigError) as info:
        check_feasible(dataclasses.replace(config, budget=Budget(smallest_params - 1)))
    assert info.value.key == "budget.max_params" and f"{smallest_params:,}" in str(info.value)
    check_feasible(
        dataclasses.replace(config, budget=Budget(config.budget.max_params, smallest_macs))
    )
    with pytest.raises(ConfigError) as info:
        check_feasible(
            dataclasses.replace(config, budget=Budget(config.budget.max_params, smallest_macs - 1))
        )
    assert info.value.key == "budget.max_macs"


def test_check_feasible_finds_the_one_valid_structure(tmp_path: Path) -> None:
    # A 32x32 pool needs the 32x32 map: one layer with stride 1, tried after strides 4 and 2.
    text = _edit("pool: global", "pool: 32\n    stride: [{choice: [4, 2, 1]}, 2]")
    config = load_config(str(_write(tmp_path, text)))
    s = survey(config.space, n=60, budget=config.budget, seed=0)
    assert s.invalid > 0 and s.feasible > 0
    error = _error(_write(tmp_path, text.replace("[4, 2, 1]", "[4, 2]"), "without-1.yaml"))
    assert error.key == "space.architecture" and "pool=32" in str(error)


def test_check_feasible_tries_pools_inside_an_int_range(tmp_path: Path) -> None:
    # Stride 4 leaves an 8x8 map: pool 1 is valid but big (8*64*10 linear weights), pool 9 is
    # invalid, pool 8 (inside the range) fits the budget.
    text = (
        "budget: {max_params: 3000}\n"
        "space:\n"
        "  architecture: {layers: 1, blocks: 1, channels: 8, stem_channels: 8, stride: [4],\n"
        "                 pool: {int: [1, 9]}}\n"
        "  training: {epochs: 3}\n"
    )
    fixed = text.replace("pool: {int: [1, 9]}", "pool: 8")
    load_config(str(_write(tmp_path, fixed, "fixed.yaml")))  # pool 8 alone fits
    load_config(str(_write(tmp_path, text)))


def test_even_kernels_in_a_range_are_refused(tmp_path: Path) -> None:
    text = _edit("    pool: global\n", "    pool: global\n    kernel: {int: [2, 5]}\n")
    error = _error(_write(tmp_path, text))
    assert error.key == "space.architecture.kernel" and "must be odd" in str(error)


def test_mixed_type_channel_choice_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _edit("{choice: [8, 16]}", "{choice: [8, wide]}"))
    error = _error(path)
    assert error.key.startswith("space.architecture")


def test_jointly_invalid_fixed_recipe_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, _edit("epochs: 3", "epochs: 2\n    warmup_epochs: 3"))
    error = _error(path)
    assert error.key.startswith("space.training") and "warmup_epochs" in str(error)


def test_nesterov_without_momentum_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "    nesterov: true\n    momentum: 0\n")
    error = _error(path)
    assert error.key.startswith("space.training") and "nesterov" in str(error)


# ---------------------------------------------------------------------------------------------
# No torch


def test_validation_and_survey_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from search.budget import survey\n"
        "from search.config import load_config\n"
        "c = load_config('b453-space')\n"
        "s = survey(c.space, n=30, budget=c.budget)\n"
        "print(s.n, s.feasible + s.over_budget + s.invalid, 'torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PROJECT_CONFIGS.parent,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["30", "30", "False"]
