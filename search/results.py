"""What a study found: its best trial(s), how to retrain them, and their exported config.

Example:
    >>> spec = {"blocks": [1], "channels": [8], "kernels": [3], "shortcut_kernels": [1],
    ...         "strides": [1], "pool": "global", "stem_channels": 8}
    >>> train_command(spec, {"epochs": 5, "lr": 0.1}).split(" --kernel")
    ['optuna-search train --blocks 1 --channels 8 --strides 1',
     ' 3 --shortcut-kernel 1 --pool global --stem-channels 8 --epochs 5']
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import yaml

from model.recipe import FIELD_TYPES
from search.flags import ARCH_FLAGS, arch_args, recipe_args
from search.record import TrialRecord
from search.yaml_loading import UniqueKeyLoader, yaml_problem


def train_command(
    spec: Mapping[str, Any],
    recipe: Mapping[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    epochs: int | None = None,
) -> str:
    """The ``optuna-search train`` command line for an architecture and recipe.

    Recipe values equal to the ``train`` defaults are left out; ``epochs`` overrides the
    recipe's (a final training usually runs longer than a search trial); ``data`` holds the
    study's data settings (dataset, data_dir, val_size).
    """
    recipe = {**recipe, **({"epochs": epochs} if epochs else {})}
    parts = ["optuna-search", "train", *arch_args(spec), *recipe_args(recipe)]
    data = data or {}
    if data.get("dataset", "cifar10") != "cifar10":
        parts += ["--dataset", data["dataset"]]
    elif data.get("data_dir"):
        parts += ["--data-dir", data["data_dir"]]
    if data.get("val_size", 5000) != 5000:
        parts += ["--val-size", str(data["val_size"])]
    return " ".join(parts)


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best feasible trial, or the Pareto set of a two-objective study (may be empty).

    Trials carried by a warm start are never among them: they trained in another study (its
    own best says what it found), and here they inform the sampler only.
    """
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    # Optuna's rules (feasible: every constraint <= 0; the first of equal values), computed here
    # rather than by study.best_trial(s) so that carried trials can be left out, and in one way
    # for every study (Optuna's own Pareto helper is private).
    own = [
        t
        for t in complete
        if not TrialRecord.of(t).carried and all(c <= 0 for c in t.constraints.values())
    ]
    if not own:
        return []
    # Each objective as a value to maximise.
    signs = [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in study.directions]
    scored = [(t, [s * v for s, v in zip(signs, t.values or [], strict=True)]) for t in own]
    if len(signs) > 1:
        front = [t for t, a in scored if not any(_dominates(b, a) for _, b in scored)]
        return sorted(front, key=lambda t: -(t.values or [0])[0])
    return [max(scored, key=lambda pair: pair[1][0])[0]]


def _dominates(a: list[float], b: list[float]) -> bool:
    """``a`` at least as good as ``b`` in every objective and better in one (maximising)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and a != b


def describe(
    trial: optuna.trial.FrozenTrial, *, data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A trial as JSON: architecture, recipe, figures, and the command that retrains it."""
    r = TrialRecord.of(trial)
    val = r.val_accuracy if r.val_accuracy is not None else (trial.values or [None])[0]
    out: dict[str, Any] = {
        "trial": trial.number,
        "values": trial.values,
        "arch": r.arch,
        "params": r.params,
        "macs": r.macs,
        "val_accuracy": val,
        "epochs_trained": r.epochs_trained,
        "outcome": r.outcome.value if r.outcome else None,
        "spec": r.spec,
        "recipe": r.recipe,
        "retrain": dataclasses.asdict(r.retrain) if r.retrain else None,
    }
    if r.spec and r.recipe:
        out["train_command"] = train_command(r.spec, r.recipe, data=data)
    return out


def export_config(trial: optuna.trial.FrozenTrial, study_name: str, path: str | Path) -> None:
    """Write the trial's architecture and recipe as YAML, for ``train --config``."""
    r = TrialRecord.of(trial)
    assert r.spec is not None and r.recipe is not None, "only trials that trained export"
    doc = {
        "source": {
            "study": study_name,
            "trial": trial.number,
            "val_accuracy": r.val_accuracy,
            "params": r.params,
            "exported": datetime.date.today().isoformat(),
        },
        "architecture": r.spec,
        "training": {k: v for k, v in r.recipe.items() if k != "compile"},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))


def read_exported(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(architecture, training) of a file written by :func:`export_config`; raises
    ``ValueError`` (one line) for a file that is not one."""
    try:
        doc = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({yaml_problem(e)})") from None
    if not isinstance(doc, dict) or "architecture" not in doc:
        raise ValueError(f"{path}: not an exported config (no architecture:)")
    unknown = set(doc) - {"source", "architecture", "training"}
    if unknown:
        raise ValueError(
            f"{path}: unknown key {sorted(unknown)[0]!r}: expected architecture, training"
        )
    arch, training = doc["architecture"], doc.get("training") or {}
    if not isinstance(arch, dict) or not isinstance(training, dict):
        raise ValueError(f"{path}: architecture and training must be mappings")
    for key in arch:
        if key not in ARCH_FLAGS:
            raise ValueError(
                f"{path}: architecture.{key}: unknown (expected {', '.join(ARCH_FLAGS)})"
            )
    for key in training:
        if key not in FIELD_TYPES:
            raise ValueError(f"{path}: training.{key}: not a recipe field")
    return arch, training
