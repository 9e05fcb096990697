"""The search space: architecture and training parameters, with real conditional structure.

A study config gives each parameter either a fixed value or a range, in one syntax::

    lr: {float: [0.01, 0.4], log: true}      # float range, optionally log or step
    blocks: {int: [1, 6]}                    # int range, optionally step or log
    pool: {choice: [2, 4, global]}           # categorical
    momentum: 0.9                            # fixed: not a parameter of the study

Per-layer architecture keys (the spec's ``blocks``, ``channels``, ``kernels``,
``shortcut_kernels``, ``strides``; ``kernel``, ``shortcut_kernel`` and ``stride`` are accepted
too) take one range for every layer (sampled per layer: ``blocks_1``, ``kernel_2``..),
a range with ``per_layer: false`` (one value shared by all layers), or a list with one entry
per layer index. The number of layers is sampled first, and only the layers that exist get
parameters, so the sampler sees the conditional structure (TPE with ``group=True``).

Example:
    >>> import optuna
    >>> space = SearchSpace.from_dict(
    ...     {"architecture": {"layers": {"int": [1, 2]}, "blocks": 1, "channels": 8,
    ...                       "stem_channels": 8, "pool": "global"},
    ...      "training": {"lr": {"float": [0.01, 0.1], "log": True}}})
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> candidate = space.sample(study.ask())
    >>> candidate.spec.channels[0], sorted(candidate.recipe)
    (8, ['lr'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from model.recipe import SEARCHABLE
from model.spec import LIMITS, SPEC_DEFAULTS, ResNetSpec, SpecError, make_spec
from search.record import is_number

if TYPE_CHECKING:
    import optuna

PER_LAYER_KEYS = ("blocks", "channels", "kernels", "shortcut_kernels", "strides")
"""The spec's per-layer fields, which the space samples per layer."""
ARCH_KEYS = ("layers", *PER_LAYER_KEYS, "pool", "stem_channels", "num_classes")
REQUIRED_ARCH_KEYS = ("layers", "blocks", "channels")
SPACE_KEYS = ("architecture", "training")
TRAINING_KEYS = SEARCHABLE
"""The recipe fields of ``model.recipe.TrainConfig`` a study may search or fix."""

ARCH_DEFAULTS: dict[str, Any] = {
    key: value for key, value in SPEC_DEFAULTS.items() if key in ARCH_KEYS
}

LEGACY_KEYS = {"kernel": "kernels", "shortcut_kernel": "shortcut_kernels", "stride": "strides"}
"""Earlier names of per-layer keys, still accepted (configs written before the space took
the spec's names)."""

PARAM_STEMS = {key: legacy for legacy, key in LEGACY_KEYS.items()}
"""Optuna parameter names of the keys that were renamed: ``kernel_1``, ``stride_2``,
``kernel`` (shared). They are stored in every study, so they stay as they were."""


def param_stem(key: str) -> str:
    """The Optuna parameter name of a per-layer key, before the layer suffix."""
    return PARAM_STEMS.get(key, key)


def arch_param_order(name: str) -> tuple[int, int] | None:
    """Sort key of an architecture parameter's Optuna name (by kind, then layer); None for
    a training parameter."""
    base, _, layer = name.rpartition("_") if re.search(r"_\d+$", name) else (name, "", "0")
    key = LEGACY_KEYS.get(base, base)
    return (ARCH_KEYS.index(key), int(layer)) if key in ARCH_KEYS else None


class SpaceError(ValueError):
    """A malformed parameter; ``key`` is its dotted path inside the space."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Fixed:
    value: Any

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return self.value

    def candidates(self) -> list[Any]:
        return [self.value]

    def contains(self, value: Any) -> bool:
        return value == self.value


@dataclass(frozen=True, slots=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def candidates(self) -> list[int]:
        return [self.low, self.high - (self.high - self.low) % self.step]

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )


@dataclass(frozen=True, slots=True)
class FloatRange:
    low: float
    high: float
    step: float | None = None
    log: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def candidates(self) -> list[float]:
        return [self.low, self.high]

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is None:
            return True
        steps = (value - self.low) / self.step
        return abs(steps - round(steps)) < 1e-9


@dataclass(frozen=True, slots=True)
class Choice:
    choices: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)

    def candidates(self) -> list[Any]:
        return list(self.choices)

    def contains(self, value: Any) -> bool:
        # 0 matches 0.0, but True must not match 1 (bool is an int in Python).
        return any(
            value == c and isinstance(value, bool) == isinstance(c, bool) for c in self.choices
        )


Param = Fixed | IntRange | FloatRange | Choice

_RANGE_KINDS = ("int", "float", "choice")
_RANGE_OPTIONS = {"int": ("step", "log"), "float": ("step", "log"), "choice": ()}


def parse_param(raw: Any, key: str, *, extra: Sequence[str] = ()) -> Param:
    """Parse one parameter of the syntax above; ``extra`` names further allowed options."""
    if not isinstance(raw, Mapping):
        if isinstance(raw, list):
            raise SpaceError(key, "a list here is ambiguous: write {choice: [...]} for a choice")
        return Fixed(raw)
    kinds = [k for k in _RANGE_KINDS if k in raw]
    if len(kinds) != 1:
        raise SpaceError(
            key,
            "a range needs exactly one of int: [low, high], float: [low, high] or choice: [values]",
        )
    kind = kinds[0]
    allowed = (kind, *_RANGE_OPTIONS[kind], *extra)
    for option in raw:
        if option not in allowed:
            raise SpaceError(f"{key}.{option}", _unknown(option, allowed))
    value = raw[kind]
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise SpaceError(f"{key}.choice", "needs a non-empty list of values")
        if any(isinstance(v, Mapping | list) for v in value):
            raise SpaceError(f"{key}.choice", "values must be plain numbers, strings or booleans")
        if len(set(map(repr, value))) != len(value):
            raise SpaceError(f"{key}.choice", f"has repeated values: {value}")
        return Choice(tuple(value))
    if not isinstance(value, list) or len(value) != 2 or not all(is_number(v) for v in value):
        raise SpaceError(f"{key}.{kind}", f"needs [low, high] as two numbers, got {value!r}")
    low, high = value
    log = raw.get("log", False)
    step = raw.get("step")
    if not isinstance(log, bool):
        raise SpaceError(f"{key}.log", f"must be true or false, got {log!r}")
    if kind == "int" and not all(isinstance(v, int) for v in value):
        raise SpaceError(f"{key}.int", f"needs integer bounds, got {value!r}")
    if low > high:
        raise SpaceError(f"{key}.{kind}", f"low {low} is greater than high {high}")
    if log and low <= 0:
        raise SpaceError(f"{key}.{kind}", f"a log range needs low > 0, got {low}")
    if step is not None:
        if not is_number(step) or step <= 0 or (kind == "int" and not isinstance(step, int)):
            raise SpaceError(f"{key}.step", f"must be a positive {kind}, got {step!r}")
        if log:
            raise SpaceError(f"{key}.step", "cannot be combined with log: true")
    if kind == "int":
        return IntRange(int(low), int(high), int(step or 1), log)
    return FloatRange(float(low), float(high), None if step is None else float(step), log)


def _unknown(name: str, allowed: Sequence[str]) -> str:
    import difflib

    near = difflib.get_close_matches(name, allowed, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else f"; expected one of: {', '.join(allowed)}"
    return f"unknown key {name!r}{hint}"


@dataclass(frozen=True, slots=True)
class PerLayer:
    """One per-layer architecture key: a param per layer index, or one shared by all layers."""

    params: tuple[Param, ...]
    """One entry (applies to every layer) or one per layer index."""
    shared: bool = False

    def for_layer(self, i: int) -> Param:
        return self.params[i] if len(self.params) > 1 else self.params[0]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One sampled configuration: a buildable spec, or the reason none could be built."""

    arch: dict[str, Any]
    """The sampled architecture values (per-layer lists, pool, stem)."""
    recipe: dict[str, Any]
    """Training values, fixed and sampled."""
    spec: ResNetSpec | None = None
    error: str | None = None


@dataclass(frozen=True)
class SearchSpace:
    layers: Param
    per_layer: dict[str, PerLayer]
    pool: Param
    stem_channels: Param
    num_classes: Param
    training: dict[str, Param] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, where: str = "space") -> SearchSpace:
        """Parse the ``space`` section; raises :class:`SpaceError` with the dotted key."""
        if not isinstance(raw, Mapping):
            raise SpaceError(where, "must be a mapping with architecture: and training:")
        for key in raw:
            if key not in SPACE_KEYS:
                raise SpaceError(f"{where}.{key}", _unknown(key, SPACE_KEYS))
        arch = raw.get("architecture")
        if not isinstance(arch, Mapping):
            raise SpaceError(f"{where}.architecture", "is required and must be a mapping")
        training = raw.get("training") or {}
        if not isinstance(training, Mapping):
            raise SpaceError(f"{where}.training", "must be a mapping")
        written: dict[str, str] = {}  # each key as the config wrote it (old names too)
        for key in arch:
            canonical = LEGACY_KEYS.get(key, key)
            if canonical not in ARCH_KEYS:
                raise SpaceError(f"{where}.architecture.{key}", _unknown(key, ARCH_KEYS))
            if canonical in written:
                raise SpaceError(
                    f"{where}.architecture.{key}",
                    f"given twice, as {written[canonical]!r} and {key!r}: keep {canonical!r}",
                )
            written[canonical] = key
        for key in training:
            if key not in TRAINING_KEYS:
                raise SpaceError(f"{where}.training.{key}", _unknown(key, TRAINING_KEYS))
        for key in REQUIRED_ARCH_KEYS:
            if key not in arch:
                raise SpaceError(f"{where}.architecture.{key}", "is required")

        def value(key: str) -> Any:
            return arch[written[key]] if key in written else ARCH_DEFAULTS.get(key)

        def path(key: str) -> str:
            return f"{where}.architecture.{written.get(key, key)}"

        def single(key: str) -> Param:
            return parse_param(value(key), path(key))

        layers = single("layers")
        _check_sizes(layers, path("layers"), "layers")
        max_layers = int(max(layers.candidates()))
        per_layer = {}
        for key in PER_LAYER_KEYS:
            k = path(key)
            raw_value = value(key)
            if key == "strides" and key not in written:
                # kuangliu's default: 1 for the first layer, 2 after it.
                per_layer[key] = PerLayer((Fixed(1),) + (Fixed(2),) * max(1, max_layers - 1))
            elif isinstance(raw_value, list):
                if len(raw_value) < max_layers:
                    raise SpaceError(
                        k,
                        f"has {len(raw_value)} per-layer entries but up to "
                        f"{max_layers} layers are searched",
                    )
                per_layer[key] = PerLayer(
                    tuple(parse_param(v, f"{k}[{i}]") for i, v in enumerate(raw_value))
                )
            else:
                shared = isinstance(raw_value, Mapping) and raw_value.get("per_layer") is False
                if isinstance(raw_value, Mapping) and "per_layer" in raw_value:
                    if not isinstance(raw_value["per_layer"], bool):
                        raise SpaceError(f"{k}.per_layer", "must be true or false")
                    raw_value = {o: v for o, v in raw_value.items() if o != "per_layer"}
                per_layer[key] = PerLayer((parse_param(raw_value, k),), shared=shared)
        for key, per in per_layer.items():
            _check_structural(per, path(key), odd=key.endswith("kernels"), limit=key)
        pool = single("pool")
        for size in pool.candidates():
            if size != "global" and not (is_int(size) and size >= 1):
                raise SpaceError(
                    path("pool"),
                    f"{size!r} is not a pool size: give a positive integer or 'global'",
                )
        sizes = {key: single(key) for key in ("stem_channels", "num_classes")}
        for key, param in sizes.items():
            _check_sizes(param, path(key), key)
        return cls(
            layers=layers,
            per_layer=per_layer,
            pool=pool,
            stem_channels=sizes["stem_channels"],
            num_classes=sizes["num_classes"],
            training={k: parse_param(v, f"{where}.training.{k}") for k, v in training.items()},
        )

    def sample(self, trial: optuna.Trial) -> Candidate:
        """Suggest every parameter through ``trial`` (an Optuna trial) and build the spec."""
        n = int(self.layers.suggest(trial, "layers"))
        arch: dict[str, Any] = {"layers": n}
        for key, per in self.per_layer.items():
            stem = param_stem(key)
            if per.shared:
                arch[key] = [per.params[0].suggest(trial, stem)] * n
            else:
                arch[key] = [per.for_layer(i).suggest(trial, f"{stem}_{i + 1}") for i in range(n)]
        arch["pool"] = self.pool.suggest(trial, "pool")
        arch["stem_channels"] = self.stem_channels.suggest(trial, "stem_channels")
        arch["num_classes"] = self.num_classes.suggest(trial, "num_classes")
        recipe = {k: p.suggest(trial, k) for k, p in self.training.items()}
        try:
            spec = build_spec(arch)
        except SpecError as e:
            return Candidate(arch=arch, recipe=recipe, error=str(e))
        return Candidate(arch=arch, recipe=recipe, spec=spec)

    def param_names(self) -> list[str]:
        """Names of every parameter that can be sampled (fixed values excluded)."""
        names = ["layers"] if not isinstance(self.layers, Fixed) else []
        max_layers = int(max(self.layers.candidates()))
        for key, per in self.per_layer.items():
            stem = param_stem(key)
            if per.shared:
                names += [stem] if not isinstance(per.params[0], Fixed) else []
            else:
                names += [
                    f"{stem}_{i + 1}"
                    for i in range(max_layers)
                    if not isinstance(per.for_layer(i), Fixed)
                ]
        for key in ("pool", "stem_channels", "num_classes"):
            names += [key] if not isinstance(getattr(self, key), Fixed) else []
        return names + [k for k, p in self.training.items() if not isinstance(p, Fixed)]

    def params_of(self, spec: ResNetSpec, recipe: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna parameters that make this space sample ``spec`` and ``recipe``.

        Used to enqueue known architectures. Raises :class:`SpaceError` naming the first value
        the space cannot produce (a fixed value that differs, a value outside a range).
        """
        n = spec.num_layers
        if not self.layers.contains(n):
            raise SpaceError("layers", f"{n} is outside the space ({_describe(self.layers)})")
        values: dict[str, tuple[Param, Any]] = {"layers": (self.layers, n)}
        for key, per in self.per_layer.items():
            layer_values: tuple[int, ...] = getattr(spec, key)
            stem = param_stem(key)
            if per.shared:
                if len(set(layer_values)) != 1:
                    raise SpaceError(
                        stem, f"the space shares one {stem} across layers, got {list(layer_values)}"
                    )
                values[stem] = (per.params[0], layer_values[0])
            else:
                for i, v in enumerate(layer_values):
                    values[f"{stem}_{i + 1}"] = (per.for_layer(i), v)
        values["pool"] = (self.pool, spec.pool)
        values["stem_channels"] = (self.stem_channels, spec.stem_channels)
        values["num_classes"] = (self.num_classes, spec.num_classes)
        for key, p in self.training.items():
            if key in recipe:
                values[key] = (p, recipe[key])
        for key in recipe:
            if key not in TRAINING_KEYS:
                raise SpaceError(key, _unknown(key, TRAINING_KEYS))
            if key not in self.training:
                raise SpaceError(
                    key,
                    "is not set by this space (trials use the default "
                    "recipe value): add it to space.training to choose it",
                )
        params = {}
        for name, (param, value) in values.items():
            if not param.contains(value):
                raise SpaceError(name, f"{value!r} is outside the space ({_describe(param)})")
            if not isinstance(param, Fixed):
                params[name] = value
        return params


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_sizes(param: Param, where: str, limit: str) -> None:
    """Every value of ``param`` is a positive integer within the spec's limit."""
    if isinstance(param, FloatRange):
        raise SpaceError(
            where, "takes integers: use int: [low, high] or choice: [...] of positive integers"
        )
    for value in param.candidates():
        if not is_int(value) or value < 1:
            raise SpaceError(where, f"{value!r} is not allowed: needs positive integers")
        if limit in LIMITS and value > LIMITS[limit]:
            raise SpaceError(where, f"{value:,} is more than the {LIMITS[limit]:,} supported")


def _check_structural(per: PerLayer, key: str, *, odd: bool, limit: str) -> None:
    """Per-layer sizes are positive integers (kernel sizes odd) within the spec's limits,
    whatever their syntax."""
    for i, param in enumerate(per.params):
        where = key if len(per.params) == 1 else f"{key}[{i}]"
        _check_sizes(param, where, limit)
        if odd and isinstance(param, IntRange) and (param.low % 2 == 0 or param.step % 2):
            raise SpaceError(
                where,
                "kernel sizes must be odd: use e.g. {int: [3, 7], step: 2} or {choice: [3, 5]}",
            )
        if odd and any(v % 2 == 0 for v in param.candidates()):
            raise SpaceError(where, "kernel sizes must be odd ('same' padding keeps the map)")


def _describe(param: Param) -> str:
    if isinstance(param, Fixed):
        return f"fixed at {param.value!r}"
    if isinstance(param, Choice):
        return f"choice of {list(param.choices)}"
    kind = "int" if isinstance(param, IntRange) else "float"
    return f"{kind} in [{param.low}, {param.high}]"


def build_spec(arch: Mapping[str, Any]) -> ResNetSpec:
    """The spec of sampled architecture values (the spec's field names, plus ``layers``);
    raises ``SpecError`` when it cannot be built."""
    return make_spec(**{key: arch[key] for key in ARCH_KEYS if key != "layers"})
