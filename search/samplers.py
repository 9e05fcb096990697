"""Samplers and pruners: their names, the Optuna keyword arguments a config may pass them, and
the objects a study uses.

A config's ``sampler:`` and ``pruner:`` sections hold the keys the project interprets
(:data:`SAMPLER_KEYS`, :data:`PRUNER_KEYS`) and, beside them, keyword arguments of the Optuna
class, e.g. ``sampler: {name: tpe, n_ei_candidates: 48}``. They are checked against the class's
signature (a misspelt key gets a "did you mean"), their values against its annotations, and
the sampler is built and asked a few trials once during validation: a bad value is a config
error, never a traceback in a trial. Refused, with the reason: what the project sets itself
(the pruner's resources come from ``min_epochs`` and the space's epochs; the budget reaches
samplers as trial constraints), Python objects a YAML file cannot give (callables, samplers),
and what Optuna deprecates.

Samplers for the conditional, mixed space (per-layer parameters exist only for the layers a
trial has; channels, kernels and pool are often categorical):

- ``tpe`` (default): multivariate TPE with group decomposition, constant liar for parallel
  workers (project defaults: ``multivariate``, ``group``, ``constant_liar`` may be given).
- ``cmaes``: CMA-ES on the numeric parameters every completed trial has; categorical and
  per-layer parameters come from ``independent_sampler`` (``tpe``, the default, or ``random``).
  One objective only. It ignores constraints: over-budget trials are pruned before training,
  and CMA-ES learns from completed trials only.
- ``qmc``: a scrambled Sobol sequence (``qmc_type: halton`` for Halton) over the parameters of
  the study's first trial, the others at random: a space-filling start. All workers share one
  sequence (seeded by ``sampler.seed``, else by the study's name) and take successive points.
- ``gp`` (Gaussian process), ``random``, ``nsga2`` (NSGA-II, for Pareto fronts).

Example:
    >>> create_sampler(SamplerConfig(name="qmc"), study="s").__class__.__name__
    'QMCSampler'
    >>> check_sampler(SamplerConfig(kwargs={"n_ei_candidate": 48}), directions=["maximize"])
    Traceback (most recent call last):
    ...
    search.samplers.SettingError: unknown key 'n_ei_candidate'; did you mean 'n_ei_candidates'?...
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import inspect
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from search.space import _unknown, is_int

if TYPE_CHECKING:
    import optuna

_SAMPLER_CLASSES = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "gp": "GPSampler",
    "nsga2": "NSGAIISampler",
    "cmaes": "CmaEsSampler",
    "qmc": "QMCSampler",
}
_PRUNER_CLASSES = {
    "asha": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "median": "MedianPruner",
    "none": "NopPruner",
}
SAMPLERS = tuple(_SAMPLER_CLASSES)
PRUNERS = tuple(_PRUNER_CLASSES)
SINGLE_OBJECTIVE = ("cmaes",)
"""Samplers that optimise one objective only."""
INDEPENDENT = ("tpe", "random")
"""Values of ``independent_sampler``: the sampler of what the main one cannot sample."""

SEED_STRIDE = 1_000_003
"""Seeds of successive workers are this far apart (a prime: they never meet in 2**32)."""

PROBE_TRIALS = 4
"""Trials a sampler with keyword arguments is asked at validation (past its startup)."""
UNPROBED = ("gp",)
"""Built at validation but not asked: GP imports torch and fits a model per trial (seconds),
and its keyword arguments are flags and names, which their type check covers."""

Kind = Literal["sampler", "pruner"]
Direction = Literal["maximize", "minimize"]

# Defaults of the project, which a config may override.
_DEFAULTS: dict[Kind, dict[str, dict[str, Any]]] = {
    "sampler": {
        # The space is conditional: group decomposition samples the parameters that occur
        # together jointly; constant liar keeps parallel workers from suggesting alike.
        "tpe": {"multivariate": True, "group": True, "constant_liar": True},
        # Categorical and per-layer parameters always come from the independent sampler:
        # expected, so no warning per parameter and trial.
        "cmaes": {"independent_sampler": "tpe", "warn_independent_sampling": False},
        "qmc": {
            "independent_sampler": "random",
            "scramble": True,  # unscrambled Sobol starts at the space's corner (all lows)
            "warn_independent_sampling": False,
        },
        "gp": {"warn_independent_sampling": False},
    },
    "pruner": {"median": {"n_startup_trials": 5}},
}

# Arguments the project sets itself, with the reason.
_SET_BY_PROJECT: dict[Kind, dict[str, str]] = {
    "sampler": {
        "constraints_func": "the budget reaches every sampler as trial constraints "
        "(trial.set_constraint); Optuna 5 deprecates constraints_func",
    },
    "pruner": {
        "min_resource": "the project sets it from pruner.min_epochs",
        "max_resource": "the project sets it to the space's largest epochs (pruner.max_epochs)",
        "n_warmup_steps": "the project sets it from pruner.warmup_epochs",
    },
}

JSON_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
}
"""The Python types a YAML value can have, and their JSON types (also ``search.schema``'s)."""
_JSON_TYPES = {("None" if t is type(None) else t.__name__): j for t, j in JSON_TYPES.items()}
"""The same, by the name an annotation writes (Optuna's are strings: ``int | None``)."""
_IS_TYPE = {
    "boolean": lambda v: isinstance(v, bool),
    "integer": is_int,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
}


class SettingError(ValueError):
    """A bad key of a ``sampler:`` or ``pruner:`` section; ``key`` is relative to it ("" for
    the section as a whole)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)

    def where(self, section: str) -> str:
        return f"{section}.{self.key}" if self.key else section


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    name: str = "tpe"
    seed: int | None = None
    n_startup_trials: int = 10
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the Optuna class, as the config gives them (:func:`check_sampler`)."""


@dataclass(frozen=True, slots=True)
class PrunerConfig:
    name: str = "asha"
    min_epochs: int = 1
    max_epochs: int | None = None
    """The pruner's maximum resource: the largest epoch count of the space, explicitly."""
    reduction_factor: int = 3
    warmup_epochs: int = 5
    """For ``median``: epochs before a trial can be pruned."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the Optuna class, as the config gives them (:func:`check_pruner`)."""


SAMPLER_KEYS = tuple(f.name for f in dataclasses.fields(SamplerConfig) if f.name != "kwargs")
"""The ``sampler:`` keys the project interprets; the others are the class's keyword arguments."""
PRUNER_KEYS = tuple(f.name for f in dataclasses.fields(PrunerConfig) if f.name != "kwargs")


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword argument a config may give an Optuna class."""

    name: str
    types: tuple[str, ...]
    """JSON types of its value: boolean, integer, number, string, null."""
    default: Any = None
    """The project's default where it has one, else Optuna's."""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Keywords:
    """What a config may pass an Optuna class, and what it may not (with the reason)."""

    cls: type
    accepted: dict[str, Keyword]
    refused: dict[str, str]


def sampler_keywords(name: str) -> Keywords:
    return _keywords("sampler", name)


def pruner_keywords(name: str) -> Keywords:
    return _keywords("pruner", name)


def _class(kind: Kind, name: str) -> type:
    import optuna

    if kind == "sampler":
        return getattr(optuna.samplers, _SAMPLER_CLASSES[name])
    return getattr(optuna.pruners, _PRUNER_CLASSES[name])


@functools.cache
def _keywords(kind: Kind, name: str) -> Keywords:
    """The class's signature, less the project's keys, sorted into accepted and refused."""
    cls = _class(kind, name)
    project = SAMPLER_KEYS if kind == "sampler" else PRUNER_KEYS
    defaults = _DEFAULTS[kind].get(name, {})
    accepted: dict[str, Keyword] = {}
    refused: dict[str, str] = {}
    with _quiet():  # building the class to find deprecations logs as building it does
        params = [
            p
            for p in inspect.signature(cls).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in project
        ]
        deprecated = {p.name: _deprecation(cls, p) for p in params}
    for p in params:
        default = defaults.get(p.name, None if p.default is p.empty else p.default)
        if p.name in _SET_BY_PROJECT[kind]:
            refused[p.name] = _SET_BY_PROJECT[kind][p.name]
        elif p.name == "independent_sampler":  # a sampler object: the config names one
            accepted[p.name] = Keyword(p.name, ("string", "null"), default, INDEPENDENT)
        elif (types := _json_types(p.annotation, p.default)) is None:
            refused[p.name] = f"takes a Python object ({_text(p.annotation)}), not a YAML value"
        elif deprecated[p.name]:
            refused[p.name] = f"Optuna deprecates it: {deprecated[p.name]}"
        else:
            accepted[p.name] = Keyword(p.name, types, default)
    return Keywords(cls, accepted, refused)


def _text(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation)


def _json_types(annotation: Any, default: Any) -> tuple[str, ...] | None:
    """The JSON types of an annotation made of bool, int, float, str and None; None when it
    names anything else (a callable, a sampler: nothing a YAML file can give)."""
    if annotation is inspect.Parameter.empty:
        if default is None or default is inspect.Parameter.empty:
            return ("boolean", "integer", "number", "string", "null")
        kind = _JSON_TYPES.get(type(default).__name__)
        return (kind,) if kind else None
    names = [part.strip() for part in _text(annotation).split("|")]
    if not all(n in _JSON_TYPES for n in names):
        return None
    return tuple(_JSON_TYPES[n] for n in names)


def _deprecation(cls: type, p: inspect.Parameter) -> str | None:
    """Optuna's deprecation message for ``p``, found by building the class with it set to a
    value other than its default (Optuna warns when a deprecated argument is given)."""
    types = _json_types(p.annotation, p.default) or ()
    default = p.default
    value: Any
    if "boolean" in types:
        value = default is not True
    elif "integer" in types or "number" in types:
        value = default + 1 if is_int(default) or isinstance(default, float) else 1
    elif "string" in types:
        value = "?"
    else:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.suppress(Exception):  # a value it rejects: not a deprecation
            cls(**{p.name: value})
    for w in caught:
        if issubclass(w.category, FutureWarning | DeprecationWarning):
            return ". ".join(str(w.message).split(". ")[:2]).rstrip(".") + "."
    return None


def check_sampler(s: SamplerConfig, *, directions: Sequence[Direction]) -> None:
    """Raise :class:`SettingError` unless ``s`` makes a working sampler for a study of these
    directions: every keyword argument known and of its type, and the sampler built and, with
    keyword arguments, asked a few trials past its startup."""
    _check_kwargs(s.kwargs, sampler_keywords(s.name), SAMPLER_KEYS, f"sampler {s.name}")
    if s.name in SINGLE_OBJECTIVE and len(directions) > 1:
        raise SettingError(
            "name", f"{s.name} optimises one objective: use tpe or nsga2 for a Pareto front"
        )
    if s.name == "cmaes" and importlib.util.find_spec("cmaes") is None:
        raise SettingError("name", "cmaes needs the cmaes package: pip install cmaes")
    blame = next(iter(s.kwargs)) if len(s.kwargs) == 1 else ""
    with _quiet():
        try:
            sampler = create_sampler(dataclasses.replace(s, n_startup_trials=1), study="probe")
        except (TypeError, ValueError) as e:
            raise SettingError(blame, f"Optuna refuses it: {e}") from None
        if s.kwargs and s.name not in UNPROBED:
            try:
                _probe(sampler, directions)
            except Exception as e:  # whatever fails here would fail every trial
                raise SettingError(
                    blame, f"the sampler fails with it: {type(e).__name__}: {e}"
                ) from None


def check_pruner(p: PrunerConfig) -> None:
    """Raise :class:`SettingError` unless ``p``'s keyword arguments are known, of their type,
    and accepted by the pruner's class."""
    _check_kwargs(p.kwargs, pruner_keywords(p.name), PRUNER_KEYS, f"pruner {p.name}")
    try:
        with _quiet():
            create_pruner(p)
    except (TypeError, ValueError) as e:
        blame = next(iter(p.kwargs)) if len(p.kwargs) == 1 else ""
        raise SettingError(blame, f"Optuna refuses it: {e}") from None


def _check_kwargs(
    kwargs: Mapping[str, Any], keywords: Keywords, project: Sequence[str], what: str
) -> None:
    valid = (*project, *keywords.accepted)
    for key, value in kwargs.items():
        if key in keywords.refused:
            raise SettingError(key, f"cannot be set for {what}: {keywords.refused[key]}")
        if key not in keywords.accepted:
            message = _unknown(key, valid)
            if "did you mean" in message:  # otherwise it lists them already
                message += f" (keys of {what}: {', '.join(valid)})"
            raise SettingError(key, message)
        kw = keywords.accepted[key]
        if not any(_IS_TYPE[t](value) for t in kw.types):
            kinds = " or ".join(t for t in kw.types)
            raise SettingError(key, f"must be {kinds}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingError(key, f"must be a finite number, got {value!r}")
        if kw.choices and value is not None and value not in kw.choices:
            raise SettingError(key, f"must be one of {', '.join(kw.choices)}, got {value!r}")


def _probe(sampler: optuna.samplers.BaseSampler, directions: Sequence[Direction]) -> None:
    """A few trials on a small mixed, conditional, constrained space, as the study's own."""
    import optuna

    study = optuna.create_study(sampler=sampler, directions=list(directions))
    for _ in range(PROBE_TRIALS):
        trial = study.ask()
        x = trial.suggest_float("x", 1e-3, 1.0, log=True)
        n = trial.suggest_int("n", 1, 3)
        c = trial.suggest_categorical("c", ["a", "b"])
        if n > 1:  # a per-layer parameter: present for some trials only
            trial.suggest_int("n_2", 1, 4)
        trial.set_constraint("params", x - 0.5)
        study.tell(trial, [x + n + (c == "a"), *[float(n)] * (len(directions) - 1)])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings and no log lines from building and probing (the study logs its own)."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def create_sampler(
    s: SamplerConfig, *, worker: int = 0, study: str = ""
) -> optuna.samplers.BaseSampler:
    """The sampler of ``s`` for the study's ``worker``-th worker process.

    Workers never share a seed (same seed, same suggestions: Optuna's #4714): a configured
    seed is offset by the worker's number, so the first worker samples exactly as the config
    says. QMC is the exception: its workers share one sequence and take successive points.
    """
    import optuna

    seed = None if s.seed is None else (s.seed + SEED_STRIDE * worker) % 2**32
    cls = _class("sampler", s.name)
    kwargs = {**_DEFAULTS["sampler"].get(s.name, {}), **s.kwargs, "seed": seed}
    if s.name == "tpe" and kwargs["multivariate"] is False and "group" not in s.kwargs:
        kwargs["group"] = False  # group needs multivariate: the default goes with it
    if "n_startup_trials" in inspect.signature(cls).parameters:
        kwargs["n_startup_trials"] = s.n_startup_trials
    if "independent_sampler" in kwargs:
        kwargs["independent_sampler"] = _independent(
            kwargs["independent_sampler"], seed, s.n_startup_trials
        )
    if s.name == "qmc":
        # QMCSampler counts the points taken in the study, per sequence: one seed for all.
        kwargs["seed"] = s.seed if s.seed is not None else _seed_of(study)
    if s.name == "cmaes":
        # It says so after every trial; over-budget trials are pruned before training, so it
        # learns from feasible ones only anyway (module docstring).
        warnings.filterwarnings(
            "ignore", "Constraints have been set, but CmaEsSampler", UserWarning
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(**kwargs)


def _independent(
    name: str | None, seed: int | None, n_startup_trials: int
) -> optuna.samplers.BaseSampler | None:
    import optuna

    if name is None:
        return None  # Optuna's default
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Asked one parameter at a time: univariate.
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=n_startup_trials, multivariate=False
    )


def _seed_of(study: str) -> int:
    """A seed every worker of ``study`` derives alike."""
    return int(hashlib.sha256(study.encode()).hexdigest()[:8], 16)


def create_pruner(p: PrunerConfig) -> optuna.pruners.BasePruner:
    """The pruner over epochs, with an explicit maximum (never "auto")."""
    import optuna

    kwargs = {**_DEFAULTS["pruner"].get(p.name, {}), **p.kwargs}
    if p.name == "none":
        return optuna.pruners.NopPruner()
    if p.name == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=p.warmup_epochs, **kwargs)
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_epochs,
            max_resource=p.max_epochs or "auto",
            reduction_factor=p.reduction_factor,
            **kwargs,
        )
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=p.min_epochs, reduction_factor=p.reduction_factor, **kwargs
    )


def describe(name: str, kwargs: Mapping[str, Any]) -> str:
    """A sampler or pruner as validation and the study's note show it: ``tpe (gamma=...)``."""
    given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{name} ({given})" if given else name


__all__ = [
    "JSON_TYPES",
    "PRUNERS",
    "PRUNER_KEYS",
    "SAMPLERS",
    "SAMPLER_KEYS",
    "Keyword",
    "Keywords",
    "PrunerConfig",
    "SamplerConfig",
    "SettingError",
    "check_pruner",
    "check_sampler",
    "create_pruner",
    "create_sampler",
    "describe",
    "pruner_keywords",
    "sampler_keywords",
]
