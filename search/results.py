"""What a study found: its best trial(s), how to retrain them, and their exported config.

Example:
    >>> spec = {"blocks": [1], "channels": [8], "kernels": [3], "shortcut_kernels": [1],
    ...         "strides": [1], "pool": "global", "stem_channels": 8}
    >>> train_command(spec, {"epochs": 5, "lr": 0.1}).split(" --kernel")
    ['optuna-search train --blocks 1 --channels 8 --strides 1',
     ' 3 --shortcut-kernel 1 --pool global --stem-channels 8 --epochs 5']
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import optuna
import yaml

from model.recipe import TrainConfig

_DEFAULT_RECIPE = TrainConfig().to_dict()
_BOOL_FLAGS = {"nesterov": "--nesterov", "tta": "--tta", "compile": "--compile"}


def _join(values: list[int]) -> str:
    return ",".join(map(str, values))


def train_command(
    spec: dict[str, Any],
    recipe: dict[str, Any],
    *,
    data: dict[str, Any] | None = None,
    epochs: int | None = None,
) -> str:
    """The ``optuna-search train`` command line for an architecture and recipe.

    Recipe values equal to the ``train`` defaults are left out; ``epochs`` overrides the
    recipe's (a final training usually runs longer than a search trial); ``data`` holds the
    study's data settings (dataset, data_dir, val_size).
    """
    parts = [
        "optuna-search",
        "train",
        "--blocks",
        _join(spec["blocks"]),
        "--channels",
        _join(spec["channels"]),
        "--strides",
        _join(spec["strides"]),
    ]
    kernels, shortcuts = spec["kernels"], spec["shortcut_kernels"]
    parts += ["--kernel", str(kernels[0]) if len(set(kernels)) == 1 else _join(kernels)]
    parts += [
        "--shortcut-kernel",
        str(shortcuts[0]) if len(set(shortcuts)) == 1 else _join(shortcuts),
    ]
    parts += ["--pool", str(spec["pool"])]
    if spec.get("stem_channels", 64) != 64:
        parts += ["--stem-channels", str(spec["stem_channels"])]
    if spec.get("num_classes", 10) != 10:
        parts += ["--num-classes", str(spec["num_classes"])]
    recipe = {**recipe, **({"epochs": epochs} if epochs else {})}
    for key, value in recipe.items():
        if key in ("compile", "eval_batch_size") or value == _DEFAULT_RECIPE.get(key):
            continue
        if key in _BOOL_FLAGS:
            parts += [_BOOL_FLAGS[key]] if value else []
        elif key == "flip":
            parts += [] if value else ["--no-flip"]
        else:
            parts += ["--" + key.replace("_", "-"), str(value)]
    data = data or {}
    if data.get("dataset", "cifar10") != "cifar10":
        parts += ["--dataset", data["dataset"]]
    elif data.get("data_dir"):
        parts += ["--data-dir", data["data_dir"]]
    if data.get("val_size", 5000) != 5000:
        parts += ["--val-size", str(data["val_size"])]
    return " ".join(parts)


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best feasible trial, or the Pareto set of a two-objective study (may be empty)."""
    try:
        if len(study.directions) > 1:
            return sorted(study.best_trials, key=lambda t: -(t.values or [0])[0])
        return [study.best_trial]
    except ValueError:  # no feasible completed trial yet
        return []


def describe(
    trial: optuna.trial.FrozenTrial, *, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A trial as JSON: architecture, recipe, figures, and the command that retrains it."""
    attrs = trial.user_attrs
    spec, recipe = attrs.get("spec"), attrs.get("recipe")
    out: dict[str, Any] = {
        "trial": trial.number,
        "values": trial.values,
        "arch": attrs.get("arch"),
        "params": attrs.get("params"),
        "macs": attrs.get("macs"),
        "val_accuracy": attrs.get("val_accuracy", (trial.values or [None])[0]),
        "epochs_trained": attrs.get("epochs_trained"),
        "outcome": attrs.get("outcome"),
        "spec": spec,
        "recipe": recipe,
        "retrain": attrs.get("retrain"),
    }
    if spec and recipe:
        out["train_command"] = train_command(spec, recipe, data=data)
    return out


def export_config(trial: optuna.trial.FrozenTrial, study_name: str, path: str | Path) -> None:
    """Write the trial's architecture and recipe as YAML, for ``train --config``."""
    attrs = trial.user_attrs
    doc = {
        "source": {
            "study": study_name,
            "trial": trial.number,
            "val_accuracy": attrs.get("val_accuracy"),
            "params": attrs.get("params"),
            "exported": datetime.date.today().isoformat(),
        },
        "architecture": attrs["spec"],
        "training": {k: v for k, v in attrs["recipe"].items() if k != "compile"},
    }
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))


def read_exported(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(architecture, training) of a file written by :func:`export_config`."""
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict) or "architecture" not in doc:
        raise ValueError(f"{path}: not an exported config (no architecture:)")
    return doc["architecture"], doc.get("training") or {}
