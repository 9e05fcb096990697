"""The JSON Schema of study configs: generated from the validator's definitions, shipped
beside the configs (which name it on their first line), and agreeing with the validator."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from search import schema as schema_module
from search.cli import main
from search.config import PROJECT_CONFIGS, TOP_KEYS, ConfigError, parse_config
from search.schema import study_schema, to_json

SHIPPED = sorted(PROJECT_CONFIGS.glob("*.yaml"))
SCHEMA_FILE = PROJECT_CONFIGS / "schema.json"
FIRST_LINE = f"# yaml-language-server: $schema={SCHEMA_FILE.name}"
SMOKE: dict[str, Any] = yaml.safe_load((PROJECT_CONFIGS / "smoke.yaml").read_text())


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = study_schema()
    Draft202012Validator.check_schema(schema)  # a valid draft 2020-12 schema itself
    return Draft202012Validator(schema)


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == to_json(study_schema()), (
        "regenerate it: optuna-search schema -o study_configs/schema.json"
    )


def test_every_top_level_key_has_a_schema() -> None:
    assert list(study_schema()["properties"]) == list(TOP_KEYS)


def test_a_key_the_generator_cannot_derive_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema_module, "TOP_KEYS", (*TOP_KEYS, "novel"))
    with pytest.raises(KeyError, match="'novel' has no JSON Schema"):
        study_schema()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_config_names_the_schema_and_satisfies_it(
    path: Path, validator: Draft202012Validator
) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == FIRST_LINE
    raw = yaml.safe_load(text)
    assert not [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(raw)]


def _with(**sections: Any) -> dict[str, Any]:
    """The smoke config with sections replaced (None: removed)."""
    raw = copy.deepcopy(SMOKE)
    for key, value in sections.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def _arch(**keys: Any) -> dict[str, Any]:
    """The smoke config's space with architecture keys replaced (None: removed)."""
    space = copy.deepcopy(SMOKE["space"])
    space["architecture"].update(keys)
    space["architecture"] = {k: v for k, v in space["architecture"].items() if v is not None}
    return space


GOOD: dict[str, dict[str, Any]] = {
    "tpe-kwargs": _with(sampler={"name": "tpe", "n_ei_candidates": 48, "constant_liar": False}),
    "default-name-kwargs": _with(sampler={"n_ei_candidates": 48}),
    "cmaes": _with(sampler={"name": "cmaes", "popsize": 8, "independent_sampler": "random"}),
    "qmc": _with(sampler={"name": "qmc", "qmc_type": "halton", "scramble": False}),
    "median": _with(pruner={"name": "median", "n_startup_trials": 2, "warmup_epochs": 1}),
    "nulls": _with(sampler=None, pruner={"name": None}, budget={"max_macs": None}, trials=None),
    "timeout-text": _with(timeout="90m"),
    "objective-string": _with(objectives="val_accuracy"),
    "legacy-key": _with(space=_arch(kernels=None, kernel={"choice": [3, 5], "per_layer": False})),
    "per-layer-list": _with(space=_arch(channels=[{"choice": [8, 16]}, 16])),
    "warm-start": _with(warm_start=["earlier", {"study": "other", "storage": "o.db"}]),
}

BAD: dict[str, dict[str, Any]] = {
    "unknown-top-key": {**SMOKE, "trails": 3},
    "unknown-sampler": _with(sampler={"name": "annealing"}),
    "kwarg-typo": _with(sampler={"name": "tpe", "n_ei_candidate": 48}),
    "kwarg-of-another-sampler": _with(sampler={"name": "random", "n_ei_candidates": 48}),
    "kwarg-type": _with(sampler={"name": "tpe", "n_ei_candidates": "many"}),
    "refused-kwarg": _with(sampler={"constraints_func": "f"}),
    "deprecated-kwarg": _with(sampler={"consider_prior": True}),
    "independent-sampler": _with(sampler={"name": "cmaes", "independent_sampler": "gp"}),
    "pruner-resource": _with(pruner={"name": "asha", "min_resource": 2}),
    "unknown-pruner": _with(pruner={"name": "patient"}),
    "data-key": _with(data={"datset": "synthetic"}),
    "dataset": _with(data={"dataset": "imagenet"}),
    "objectives-order": _with(objectives=["params"]),
    "objective-unknown": _with(objectives=["val_accuracy", "flops"]),
    "no-space": _with(space=None),
    "arch-key": _with(space=_arch(pol="global")),
    "range-option": _with(space=_arch(blocks={"int": [1, 2], "lgo": True})),
    "float-range-of-sizes": _with(space=_arch(blocks={"float": [1, 2]})),
    "training-key": _with(space={**SMOKE["space"], "training": {"epoch": 3}}),
    "name": _with(name="two words"),
    "timeout": _with(timeout="soon"),
    "enqueue-both": _with(enqueue=[{"arch": "ResNet10", "architecture": {"blocks": [1]}}]),
    "warm-start-key": _with(warm_start=[{"studdy": "a"}]),
}


@pytest.mark.parametrize("raw", GOOD.values(), ids=GOOD.keys())
def test_valid_configs_satisfy_the_schema(validator: Draft202012Validator, raw: dict) -> None:
    parse_config(raw, path=Path("good.yaml"))  # the validator agrees
    assert validator.is_valid(raw), [e.message for e in validator.iter_errors(raw)]


@pytest.mark.parametrize("raw", BAD.values(), ids=BAD.keys())
def test_configs_the_validator_refuses_the_schema_refuses(
    validator: Draft202012Validator, raw: dict
) -> None:
    with pytest.raises(ConfigError):
        parse_config(raw, path=Path("bad.yaml"))
    assert not validator.is_valid(raw)


def test_the_command_prints_or_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed) == study_schema()
    out = tmp_path / "sub" / "schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == printed
