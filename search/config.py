"""Study configs: one YAML file per study, validated completely before storage is touched.

A config is found by name (``--study b453-space`` looks in ``./study_configs/`` and then the
project's ``study_configs/``) or by path. Every problem is one :class:`ConfigError` naming the
file and the dotted key, with a "did you mean" for misspelt keys. See ``study_configs/`` for
annotated examples and README.md for the full syntax.

Example:
    >>> config = load_config("smoke")
    >>> config.objectives
    ('val_accuracy',)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from model.architectures import UnknownArchitectureError, architecture
from model.recipe import FIELD_TYPES, TrainConfig
from model.spec import SpecError, make_spec
from search.budget import DEFAULT_MAX_PARAMS, Budget
from search.samplers import (
    PRUNER_KEYS,
    PRUNERS,
    SAMPLER_KEYS,
    SAMPLERS,
    PrunerConfig,
    SamplerConfig,
    SettingError,
    check_pruner,
    check_sampler,
)
from search.space import (
    ARCH_KEYS,
    TRAINING_KEYS,
    Choice,
    Fixed,
    FloatRange,
    IntRange,
    SearchSpace,
    SpaceError,
    _unknown,
)
from search.yaml_loading import UniqueKeyLoader

SPEC_FIELDS = tuple(k for k in ARCH_KEYS if k != "layers")
"""The fields of an architecture written out (``make_spec``'s arguments)."""

PROJECT_CONFIGS = Path(__file__).resolve().parent.parent / "study_configs"
OBJECTIVES = ("val_accuracy", "params", "macs")
DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "val_accuracy": "maximize",
    "params": "minimize",
    "macs": "minimize",
}
TOP_KEYS = (
    "name",
    "description",
    "objectives",
    "budget",
    "trials",
    "timeout",
    "sampler",
    "pruner",
    "data",
    "storage",
    "space",
    "enqueue",
    "checkpoints",
    "artifacts",
    "warm_start",
)

# The type each training value must have (bool is not accepted where a number is expected).
_TRAINING_TYPES: dict[str, type | tuple[type, ...]] = {
    name: (int, float) if kind is float else kind for name, kind in FIELD_TYPES.items()
}
# Named here for the validator and the JSON Schema (search.schema) alike.
NAME_PATTERN = r"\w[\w.-]*"
"""A study's name becomes a folder (checkpoints, artifacts): never '..' or hidden."""
NAME_MAX_LENGTH = 128
DURATION_PATTERN = r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*"
"""A timeout as text: seconds, or a number with a unit (90m, 12h, 2d)."""
BUDGET_KEYS = tuple(f.name for f in dataclasses.fields(Budget))
DATASETS = ("cifar10", "synthetic")
ENQUEUE_KEYS = ("arch", "architecture", "training", "label")


class ConfigError(ValueError):
    """A study config that cannot be used; one line naming the file, the key and the fix."""

    def __init__(self, path: str | Path, key: str, message: str) -> None:
        self.path, self.key = str(path), key
        super().__init__(f"{path}: {key}: {message}")


@dataclass(frozen=True, slots=True)
class DataConfig:
    dataset: str = "cifar10"
    data_dir: str = "data"
    val_size: int = 5000
    train_subset: int | None = None
    test_subset: int | None = None
    synthetic_size: tuple[int, int] = (5000, 1000)


DATA_KEYS = tuple(f.name for f in dataclasses.fields(DataConfig))


@dataclass(frozen=True, slots=True)
class WarmStartSource:
    """An earlier study to warm-start from (``search.warm_start``)."""

    study: str
    storage: str | None = None
    """Its storage URL or SQLite path; None: the new study's own storage."""

    def as_raw(self) -> dict[str, str]:
        return {"study": self.study, **({"storage": self.storage} if self.storage else {})}


@dataclass(frozen=True)
class StudyConfig:
    path: Path
    name: str
    space: SearchSpace
    description: str = ""
    objectives: tuple[str, ...] = ("val_accuracy",)
    budget: Budget = field(default_factory=Budget)
    trials: int | None = None
    timeout: float | None = None
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    storage: str | None = None
    enqueue: tuple[tuple[str, dict[str, Any]], ...] = ()
    """(label, Optuna params) of trials to run first."""
    checkpoints: str = "checkpoints"
    artifacts: str = "artifacts"
    warm_start: tuple[WarmStartSource, ...] = ()
    """Earlier studies whose fitting trials are copied in when the study is created."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    """The YAML as read, for the study's note and export."""

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:
        return [DIRECTIONS[o] for o in self.objectives]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


def find_config(study: str) -> Path:
    """The file of ``--study``: a path, or a name in ./study_configs or the project's folder."""
    as_path = Path(study)
    if as_path.suffix in (".yaml", ".yml") or as_path.exists():
        if not as_path.is_file():
            raise ConfigError(study, "(file)", "no such study config file")
        return as_path
    folders = [Path.cwd() / "study_configs", PROJECT_CONFIGS]
    for folder in folders:
        for suffix in (".yaml", ".yml"):
            if (folder / f"{study}{suffix}").is_file():
                return folder / f"{study}{suffix}"
    known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.y*ml")})
    raise ConfigError(
        study,
        "(study)",
        "no such study config; "
        + _unknown(study, known)
        .replace("unknown key", "known studies are:", 1)
        .split(";")[-1]
        .strip()
        if known
        else f"no such study config in {folders[0]}",
    )


def load_config(study: str) -> StudyConfig:
    """Find, read and validate a study config; raises :class:`ConfigError`."""
    path = find_config(study)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(yaml)"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(path, where, f"not valid YAML: {problem}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            path, "(file)", f"not UTF-8 text (byte {e.start}): save it as UTF-8"
        ) from None
    except RecursionError:
        raise ConfigError(path, "(file)", "nested too deeply to be a study config") from None
    except OSError as e:
        raise ConfigError(path, "(file)", f"cannot read: {e.strerror}") from None
    try:
        return parse_config(raw, path=path)
    except RecursionError:
        raise ConfigError(path, "(file)", "nested too deeply to be a study config") from None


MAX_TIMEOUT = 366 * 86400.0
"""A year: longer is a typo (and beyond what a worker can be handed as a number)."""


def parse_timeout(value: Any, path: Path) -> float | None:
    """Seconds, or a number with a unit (``90m``, ``12h``, ``2d``), positive and at most a
    year; the command line passes "3600" as text."""
    if value is None:
        return None
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = re.fullmatch(DURATION_PATTERN, str(value))
        if m:
            seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
    if seconds is None or not 0 < seconds <= MAX_TIMEOUT:
        raise ConfigError(
            path,
            "timeout",
            f"{value!r} is not a duration of up to a year: give seconds or e.g. 90m, 12h, 2d",
        )
    return seconds


class _Section:
    """Typed access to one mapping of the config, with the errors the config module gives."""

    def __init__(
        self, raw: Any, key: str, allowed: tuple[str, ...], path: Path, *, extra: bool = False
    ) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(path, key or "(top level)", "must be a mapping of key: value")
        self.extra: dict[str, Any] = {}
        """With ``extra``: the keys beyond ``allowed`` (an Optuna class's keyword arguments)."""
        for k in raw:
            if k not in allowed and extra:
                self.extra[str(k)] = raw[k]
            elif k not in allowed:
                raise ConfigError(path, f"{key}.{k}" if key else str(k), _unknown(str(k), allowed))
        self.raw, self.key, self.path = raw, key, path

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any,
        *,
        check: Callable[[Any], object] | None = None,
        expected: str = "",
    ) -> Any:
        if name not in self.raw or self.raw[name] is None:
            return default
        value = self.raw[name]
        key = f"{self.key}.{name}" if self.key else name
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(self.path, key, f"must be {expected or names}, got {value!r}")
        if check is not None and not check(value):
            raise ConfigError(self.path, key, f"must be {expected}, got {value!r}")
        return value


def parse_config(raw: Any, *, path: Path) -> StudyConfig:
    """Validate a config already read from YAML (see :func:`load_config`)."""
    top = _Section(raw, "", TOP_KEYS, path)
    if "space" not in top.raw:
        raise ConfigError(path, "space", "is required: the architecture and training to search")
    name = top.get(
        "name",
        str,
        path.stem,
        check=lambda v: re.fullmatch(NAME_PATTERN, v) and len(v) <= NAME_MAX_LENGTH,
        expected="letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
    objectives = top.raw.get("objectives", ["val_accuracy"])
    if isinstance(objectives, str):
        objectives = [objectives]
    if not isinstance(objectives, list) or not objectives:
        raise ConfigError(path, "objectives", "must be a list, e.g. [val_accuracy, params]")
    for o in objectives:
        if o not in OBJECTIVES:
            raise ConfigError(path, "objectives", _unknown(str(o), OBJECTIVES))
    if objectives[0] != OBJECTIVES[0] or len(set(objectives)) != len(objectives):
        raise ConfigError(
            path,
            "objectives",
            "start with val_accuracy, then optionally params or macs (to minimise), each once",
        )
    budget_s = _Section(top.raw.get("budget"), "budget", BUDGET_KEYS, path)
    positive: dict[str, Any] = {"check": lambda v: v > 0, "expected": "a positive integer"}
    budget = Budget(
        max_params=budget_s.get("max_params", int, DEFAULT_MAX_PARAMS, **positive),
        max_macs=budget_s.get("max_macs", int, None, **positive),
    )
    trials = top.get("trials", int, None, **positive)

    sampler_s = _Section(top.raw.get("sampler"), "sampler", SAMPLER_KEYS, path, extra=True)
    sampler = SamplerConfig(
        name=sampler_s.get(
            "name",
            str,
            "tpe",
            check=lambda v: v in SAMPLERS,
            expected=f"one of {', '.join(SAMPLERS)}",
        ),
        seed=sampler_s.get(
            "seed", int, None, check=lambda v: 0 <= v < 2**32, expected="int in [0, 2**32)"
        ),
        n_startup_trials=sampler_s.get(
            "n_startup_trials", int, 10, check=lambda v: v >= 0, expected="an integer >= 0"
        ),
        kwargs=sampler_s.extra,
    )
    try:
        check_sampler(sampler, directions=[DIRECTIONS[o] for o in objectives])
    except SettingError as e:
        raise ConfigError(path, e.where("sampler"), str(e)) from None

    try:
        space = SearchSpace.from_dict(top.raw["space"])
    except SpaceError as e:
        raise ConfigError(path, e.key, str(e)) from None
    _check_training(space, path)
    epochs = space.training.get("epochs", Fixed(200))
    max_epochs = max(epochs.candidates()) if not isinstance(epochs, FloatRange) else None

    pruner_s = _Section(top.raw.get("pruner"), "pruner", PRUNER_KEYS, path, extra=True)
    pruner_name = pruner_s.get(
        "name",
        str,
        "asha" if len(objectives) == 1 else "none",
        check=lambda v: v in PRUNERS,
        expected=f"one of {', '.join(PRUNERS)}",
    )
    if len(objectives) > 1 and pruner_name != "none":
        raise ConfigError(
            path,
            "pruner.name",
            "Optuna cannot prune multi-objective studies (no intermediate values): use none",
        )
    given_max = pruner_s.get("max_epochs", int, None, **positive)
    if given_max is not None and given_max != max_epochs:
        raise ConfigError(
            path,
            "pruner.max_epochs",
            f"{given_max} differs from the largest training epochs ({max_epochs})",
        )
    pruner = PrunerConfig(
        name=pruner_name,
        min_epochs=pruner_s.get("min_epochs", int, 1, **positive),
        reduction_factor=pruner_s.get(
            "reduction_factor", int, 3, check=lambda v: v >= 2, expected="an integer >= 2"
        ),
        warmup_epochs=pruner_s.get(
            "warmup_epochs", int, 5, check=lambda v: v >= 0, expected="an integer >= 0"
        ),
        max_epochs=max_epochs,
        kwargs=pruner_s.extra,
    )
    if max_epochs is not None and pruner.min_epochs > max_epochs:
        raise ConfigError(
            path,
            "pruner.min_epochs",
            f"{pruner.min_epochs} exceeds the training epochs ({max_epochs})",
        )
    try:
        check_pruner(pruner)
    except SettingError as e:
        raise ConfigError(path, e.where("pruner"), str(e)) from None

    data_s = _Section(top.raw.get("data"), "data", DATA_KEYS, path)
    synthetic_size = data_s.get("synthetic_size", list, [5000, 1000])
    if len(synthetic_size) != 2 or not all(isinstance(v, int) and v > 0 for v in synthetic_size):
        raise ConfigError(path, "data.synthetic_size", "must be [train, test] positive integers")
    data = DataConfig(
        dataset=data_s.get(
            "dataset",
            str,
            "cifar10",
            check=lambda v: v in DATASETS,
            expected="cifar10 or synthetic",
        ),
        data_dir=data_s.get("data_dir", str, "data"),
        val_size=data_s.get(
            "val_size", int, 5000, check=lambda v: v >= 0, expected="an integer >= 0"
        ),
        train_subset=data_s.get("train_subset", int, None, **positive),
        test_subset=data_s.get("test_subset", int, None, **positive),
        synthetic_size=(synthetic_size[0], synthetic_size[1]),
    )
    if data.val_size == 0:
        raise ConfigError(
            path,
            "data.val_size",
            "a search selects on validation accuracy: give at least 1 validation image",
        )

    config = StudyConfig(
        path=path,
        name=name,
        space=space,
        description=top.get("description", str, ""),
        objectives=tuple(objectives),
        budget=budget,
        trials=trials,
        timeout=parse_timeout(top.raw.get("timeout"), path),
        sampler=sampler,
        pruner=pruner,
        data=data,
        storage=top.get("storage", str, None),
        enqueue=_parse_enqueue(top.raw.get("enqueue"), space, path),
        checkpoints=top.get("checkpoints", str, "checkpoints"),
        artifacts=top.get("artifacts", str, "artifacts"),
        warm_start=_parse_warm_start(top.raw.get("warm_start"), name, path),
        raw=dict(raw),
    )
    check_feasible(config)
    return config


def _check_training(space: SearchSpace, path: Path) -> None:
    """Every candidate training value has the right type and, together with the fixed values,
    makes a valid recipe (fixed values that conflict would make every trial invalid)."""
    fixed = {k: p.value for k, p in space.training.items() if isinstance(p, Fixed)}
    for key, param in space.training.items():
        where = f"space.training.{key}"
        kind = _TRAINING_TYPES[key]
        if isinstance(param, FloatRange) and kind is int:
            raise ConfigError(path, where, "takes integers: use int: [low, high]")
        if isinstance(param, FloatRange | IntRange) and kind in (bool, str):
            raise ConfigError(
                path, where, f"takes {kind.__name__} values: use a fixed value or choice: [...]"
            )
        for value in param.candidates():
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
                name = getattr(kind, "__name__", "number")
                raise ConfigError(path, where, f"{value!r} is not a valid {key} ({name})")
            try:
                TrainConfig.from_dict({key: value})
            except ValueError as e:
                raise ConfigError(path, where, str(e).split(": ", 1)[-1]) from None
    for key, param in space.training.items():  # each value alone is fine: now together
        errors = []
        for value in param.candidates():
            try:
                TrainConfig(**{**fixed, key: value})
            except ValueError as e:
                errors.append(str(e).split(": ", 1)[-1])
        if len(errors) == len(param.candidates()):
            raise ConfigError(
                path,
                f"space.training.{key}",
                f"conflicts with the other training values: {errors[0]}",
            )


def _parse_enqueue(raw: Any, space: SearchSpace, path: Path) -> tuple[tuple[str, dict], ...]:
    """Enqueued trials: ``arch: NAME`` or ``architecture: {blocks: .., ...}``, plus training."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(path, "enqueue", "must be a list of trials")
    out = []
    for i, entry in enumerate(raw):
        key = f"enqueue[{i}]"
        s = _Section(entry, key, ENQUEUE_KEYS, path)
        if ("arch" in s.raw) == ("architecture" in s.raw):
            raise ConfigError(path, key, "give either arch: NAME or architecture: {...}")
        label = s.get("label", str, None)
        if "arch" in s.raw:
            try:
                spec = architecture(str(s.raw["arch"]))
            except UnknownArchitectureError as e:
                raise ConfigError(path, f"{key}.arch", str(e)) from None
            label = label or str(s.raw["arch"])
        else:
            a = _Section(s.raw["architecture"], f"{key}.architecture", SPEC_FIELDS, path)
            try:
                spec = make_spec(**a.raw)
            except (SpecError, TypeError) as e:
                raise ConfigError(path, f"{key}.architecture", str(e)) from None
            label = label or spec.name
        training = _Section(s.raw.get("training"), f"{key}.training", TRAINING_KEYS, path).raw
        try:
            params = space.params_of(spec, training)
        except SpaceError as e:
            raise ConfigError(path, f"{key} ({label})", f"{e.key}: {e}") from None
        out.append((label, params))
    return tuple(out)


def _parse_warm_start(raw: Any, name: str, path: Path) -> tuple[WarmStartSource, ...]:
    """``warm_start: [NAME, {study: NAME, storage: URL}, ...]`` (storage: this study's)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(path, "warm_start", "must be a list, e.g. [{study: NAME}]")
    out: list[WarmStartSource] = []
    for i, entry in enumerate(raw):
        key = f"warm_start[{i}]"
        entry = {"study": entry} if isinstance(entry, str) else entry
        s = _Section(entry, key, ("study", "storage"), path)
        study = s.get("study", str, None, check=str.strip, expected="a study name")
        if study is None:
            raise ConfigError(path, f"{key}.study", "is required: the earlier study's name")
        storage = s.get("storage", str, None, check=str.strip, expected="a URL or a path")
        if storage is None and study == name:
            raise ConfigError(path, f"{key}.study", f"{study!r} is this study itself")
        source = WarmStartSource(study, storage)
        if source not in out:
            out.append(source)
    return tuple(out)


def check_feasible(config: StudyConfig) -> None:
    """Raise unless some configuration of the space is valid and within the budget."""
    found = config.budget.search(config.space)
    if found.feasible:
        return
    if found.smallest is None:
        raise ConfigError(
            config.path,
            "space.architecture",
            f"no configuration of the space is a valid architecture ({found.first_error})",
        )
    params, macs = found.smallest
    if params > config.budget.max_params:
        raise ConfigError(
            config.path,
            "budget.max_params",
            f"no configuration fits: the smallest in the "
            f"space has {params:,} parameters > {config.budget.max_params:,}",
        )
    raise ConfigError(
        config.path,
        "budget.max_macs",
        f"no configuration fits: the smallest in the space "
        f"needs {macs:,} MACs > {config.budget.max_macs:,}",
    )


__all__ = [
    "Choice",
    "ConfigError",
    "DataConfig",
    "PrunerConfig",
    "SamplerConfig",
    "StudyConfig",
    "WarmStartSource",
    "find_config",
    "load_config",
    "parse_config",
]
