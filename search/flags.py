"""The command-line flags of an architecture and a recipe, defined once.

``optuna-search train`` parses them, and the commands the search prints (``best``, the
report, ``export``) render them: both come from here, and the recipe flags come from the
fields of :class:`model.recipe.TrainConfig` (adding a recipe field adds its flag).

Example:
    >>> recipe_flag("flip"), recipe_flag("tta"), recipe_flag("warmup_epochs")
    ('--no-flip', '--tta', '--warmup-epochs')
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from model.recipe import FIELD_TYPES, RECIPE_FIELDS, RESUME_FREE, TrainConfig
from model.spec import SPEC_DEFAULTS

ARCH_FLAGS = {
    "blocks": "--blocks",
    "channels": "--channels",
    "strides": "--strides",
    "kernels": "--kernel",
    "shortcut_kernels": "--shortcut-kernel",
    "pool": "--pool",
    "stem_channels": "--stem-channels",
    "num_classes": "--num-classes",
}
"""The flag of each architecture field (kernels take one size for every layer, or a list)."""

_DEFAULTS = TrainConfig()


def recipe_flag(name: str) -> str:
    """The flag of a recipe field: ``--no-NAME`` for a switch that is on by default."""
    dashed = name.replace("_", "-")
    on_by_default = FIELD_TYPES[name] is bool and getattr(_DEFAULTS, name)
    return f"--no-{dashed}" if on_by_default else f"--{dashed}"


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    """Training flags. Unset flags stay None: they fall back to --config, then the defaults."""
    g = parser.add_argument_group("recipe (defaults: the paper's 95.95% run)")
    for f in RECIPE_FIELDS:
        kind, flag = FIELD_TYPES[f.name], recipe_flag(f.name)
        if kind is bool:
            action = "store_false" if flag.startswith("--no-") else "store_true"
            g.add_argument(flag, dest=f.name, action=action, default=None, help=f.metadata["help"])
        else:
            text = f"{f.metadata['help']} (default {f.default})"
            g.add_argument(flag, dest=f.name, type=kind, default=None, help=text)


def recipe_from_args(
    args: argparse.Namespace, base: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The recipe: the defaults, then ``base`` (an exported config), then the flags.

    Raises ``ValueError`` naming a field whose value is out of range.
    """
    values = {**_DEFAULTS.to_dict(), **(base or {})}
    for f in RECIPE_FIELDS:
        if getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    return TrainConfig.from_dict(values)


def _join(values: Sequence[int]) -> str:
    return ",".join(map(str, values))


def arch_args(spec: Mapping[str, Any]) -> list[str]:
    """The flags that rebuild ``spec`` (a ``ResNetSpec.to_dict()``); defaults left out where
    the flag has one."""
    parts = []
    for key, flag in ARCH_FLAGS.items():
        value = spec.get(key, SPEC_DEFAULTS.get(key))
        if key in ("stem_channels", "num_classes") and value == SPEC_DEFAULTS[key]:
            continue
        if isinstance(value, list | tuple):
            text = (
                str(value[0]) if key.endswith("kernels") and len(set(value)) == 1 else _join(value)
            )
        else:
            text = str(value)
        parts += [flag, text]
    return parts


def recipe_args(recipe: Mapping[str, Any]) -> list[str]:
    """The flags of the recipe values that differ from the defaults (leaving out those that do
    not change the result, such as ``compile``)."""
    parts: list[str] = []
    for key, value in recipe.items():
        if key in RESUME_FREE or key not in FIELD_TYPES or value == getattr(_DEFAULTS, key):
            continue
        if FIELD_TYPES[key] is bool:
            parts.append(recipe_flag(key))  # a switch differs from its default: give it
        else:
            parts += [recipe_flag(key), str(value)]
    return parts
