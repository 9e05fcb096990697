"""Samplers and pruners: keyword arguments from the config, checked before anything runs, and
the samplers for a mixed space (cmaes, qmc) running the smoke study end to end."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, cast

import optuna
import pytest
import yaml

from search.config import PROJECT_CONFIGS, ConfigError, load_config
from search.record import StudyRecord
from search.samplers import (
    SAMPLERS,
    SamplerConfig,
    create_sampler,
    pruner_keywords,
    sampler_keywords,
)
from search.study import make_pruner, make_sampler
from tests.conftest import run_cli

SMOKE_TEXT = (PROJECT_CONFIGS / "smoke.yaml").read_text()
SMOKE_SAMPLER = "sampler: {name: tpe, seed: 0, n_startup_trials: 3}"
SMOKE_PRUNER = "pruner: {name: asha, min_epochs: 1, reduction_factor: 2}"


def _config(tmp_path: Path, sampler: str = "", pruner: str = "", name: str = "s.yaml") -> Path:
    """The smoke config with its ``sampler:`` (or ``pruner:``) line replaced."""
    assert SMOKE_SAMPLER in SMOKE_TEXT and SMOKE_PRUNER in SMOKE_TEXT
    text = SMOKE_TEXT.replace(SMOKE_SAMPLER, f"sampler: {sampler}" if sampler else SMOKE_SAMPLER)
    text = text.replace(SMOKE_PRUNER, f"pruner: {pruner}" if pruner else SMOKE_PRUNER)
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


# ---------------------------------------------------------------------------------------------
# Keyword arguments reach the Optuna class


def test_keyword_arguments_reach_the_sampler_and_pruner(tmp_path: Path) -> None:
    config = load_config(
        str(
            _config(
                tmp_path,
                "{name: tpe, seed: 0, n_ei_candidates: 48, constant_liar: false}",
                "{name: asha, min_epochs: 1, reduction_factor: 2, bootstrap_count: 1}",
            )
        )
    )
    assert config.sampler.kwargs == {"n_ei_candidates": 48, "constant_liar": False}
    sampler = make_sampler(config)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_ei_candidates == 48 and not sampler._constant_liar
    assert sampler._group and sampler._multivariate  # the project's defaults, kept
    pruner = make_pruner(config)
    assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner)
    assert pruner._bootstrap_count == 1 and pruner._min_resource == 1
    # Stored with the study as given (the config copy is the YAML as read).
    assert config.raw["sampler"]["n_ei_candidates"] == 48


def test_median_pruner_startup_is_a_default_the_config_may_change(tmp_path: Path) -> None:
    median = "{name: median, warmup_epochs: 1}"
    default = make_pruner(load_config(str(_config(tmp_path, pruner=median))))
    assert isinstance(default, optuna.pruners.MedianPruner)
    assert default._n_startup_trials == 5 and default._n_warmup_steps == 1
    given = "{name: median, warmup_epochs: 1, n_startup_trials: 2}"
    changed = make_pruner(load_config(str(_config(tmp_path, pruner=given))))
    assert isinstance(changed, optuna.pruners.MedianPruner) and changed._n_startup_trials == 2


def test_tpe_without_multivariate_drops_the_group_default(tmp_path: Path) -> None:
    config = load_config(str(_config(tmp_path, "{name: tpe, multivariate: false}")))
    sampler = make_sampler(config)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate is False and not sampler._group


# ---------------------------------------------------------------------------------------------
# Bad keyword arguments: one ConfigError naming the file and sampler.<key>, at validation

BAD: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # (id, sampler or pruner line, key, fragment, more fragments)
    (
        "typo",
        "sampler: {name: tpe, n_ei_candidate: 48}",
        "sampler.n_ei_candidate",
        "did you mean 'n_ei_candidates'",
        ("keys of sampler tpe:", "n_startup_trials", "constant_liar"),
    ),
    (
        "another-samplers-key",
        "sampler: {name: random, n_ei_candidates: 48}",
        "sampler.n_ei_candidates",
        "unknown key",
        ("expected one of: name, seed, n_startup_trials",),
    ),
    ("type", "sampler: {n_ei_candidates: many}", "sampler.n_ei_candidates", "must be integer", ()),
    ("float-for-int", "sampler: {n_ei_candidates: 4.5}", "sampler.n_ei_candidates", "integer", ()),
    ("bool-for-int", "sampler: {n_ei_candidates: true}", "sampler.n_ei_candidates", "integer", ()),
    ("nan", "sampler: {name: nsga2, crossover_prob: .nan}", "sampler.crossover_prob", "finite", ()),
    # Values of the right type that Optuna refuses: when built, or only when sampling.
    ("built", "sampler: {name: qmc, qmc_type: faure}", "sampler.qmc_type", "Optuna refuses", ()),
    ("sampling", "sampler: {n_ei_candidates: 0}", "sampler.n_ei_candidates", "fails with it", ()),
    ("cma-popsize", "sampler: {name: cmaes, popsize: 0}", "sampler.popsize", "fails with it", ()),
    (
        "together",
        "sampler: {multivariate: false, group: true}",
        "sampler",
        "can only be enabled when ``multivariate``",
        (),
    ),
    (
        "independent",
        "sampler: {name: cmaes, independent_sampler: gp}",
        "sampler.independent_sampler",
        "one of tpe, random",
        (),
    ),
    # Refused, with the reason.
    (
        "constraints",
        "sampler: {constraints_func: f}",
        "sampler.constraints_func",
        "trial constraints",
        (),
    ),
    ("object", "sampler: {gamma: 10}", "sampler.gamma", "takes a Python object", ("Callable",)),
    (
        "deprecated",
        "sampler: {consider_prior: true}",
        "sampler.consider_prior",
        "Optuna deprecates it",
        (),
    ),
    (
        "cma-deprecated",
        "sampler: {name: cmaes, sigma0: 0.5}",
        "sampler.sigma0",
        "Optuna deprecates it",
        (),
    ),
    (
        "pruner-resource",
        "pruner: {name: asha, min_resource: 2}",
        "pruner.min_resource",
        "pruner.min_epochs",
        (),
    ),
    (
        "pruner-warmup",
        "pruner: {name: median, n_warmup_steps: 2}",
        "pruner.n_warmup_steps",
        "pruner.warmup_epochs",
        (),
    ),
    (
        "pruner-typo",
        "pruner: {name: asha, bootstrap_cont: 1}",
        "pruner.bootstrap_cont",
        "did you mean 'bootstrap_count'",
        (),
    ),
    (
        "pruner-value",
        "pruner: {name: asha, min_early_stopping_rate: -1}",
        "pruner.min_early_stopping_rate",
        "Optuna refuses",
        (),
    ),
    (
        "none-takes-none",
        "pruner: {name: none, bootstrap_count: 1}",
        "pruner.bootstrap_count",
        "unknown key",
        (),
    ),
]


@pytest.mark.parametrize(
    ("line", "key", "fragment", "more"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_keyword_arguments(
    tmp_path: Path, line: str, key: str, fragment: str, more: tuple[str, ...]
) -> None:
    section, value = line.split(": ", 1)
    path = _config(tmp_path, **{section: value})
    message = _error(path)
    assert f": {key}: " in message and fragment in message, message
    for text in more:
        assert text in message, message


def test_cmaes_optimises_one_objective(tmp_path: Path) -> None:
    text = (PROJECT_CONFIGS / "pareto-wide.yaml").read_text()
    old = "sampler: {name: tpe, n_startup_trials: 30}"
    assert old in text
    path = tmp_path / "p.yaml"
    path.write_text(text.replace(old, "sampler: {name: cmaes}"))
    assert ": sampler.name: cmaes optimises one objective" in _error(path)


def test_cmaes_without_its_package_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else find_spec(name)
    )
    message = _error(_config(tmp_path, "{name: cmaes}"))
    assert ": sampler.name: cmaes needs the cmaes package: pip install cmaes" in message


def test_validate_and_the_note_show_the_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.cli import main
    from search.study import study_note

    path = _config(tmp_path, "{name: cmaes, popsize: 8}", "{name: median, n_min_trials: 2}")
    assert main(["validate", "--study", str(path)]) == 0
    out = capsys.readouterr().out
    assert "sampler cmaes (popsize=8); pruner median (n_min_trials=2)" in out
    assert "sampler `cmaes (popsize=8)`" in study_note(load_config(str(path)))


def test_every_signature_parameter_is_accepted_or_refused_with_a_reason() -> None:
    """Nothing of a class's signature is silently dropped, for every sampler and pruner."""
    import inspect

    from search.samplers import PRUNER_KEYS, PRUNERS, SAMPLER_KEYS

    for names, keywords, project in (
        (SAMPLERS, sampler_keywords, SAMPLER_KEYS),
        (PRUNERS, pruner_keywords, PRUNER_KEYS),
    ):
        for name in names:
            kw = keywords(name)
            params = {
                p.name
                for p in inspect.signature(kw.cls).parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            }
            assert params - set(project) == set(kw.accepted) | set(kw.refused), name
            assert not set(kw.accepted) & set(kw.refused)
            assert all(kw.refused.values())


# ---------------------------------------------------------------------------------------------
# The samplers for a mixed space


def test_cmaes_falls_back_on_tpe_and_says_nothing_per_trial() -> None:
    s = SamplerConfig(name="cmaes", seed=0, n_startup_trials=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler: Any = create_sampler(s)
        assert isinstance(sampler, optuna.samplers.CmaEsSampler)
        assert isinstance(sampler._independent_sampler, optuna.samplers.TPESampler)
        study = optuna.create_study(sampler=sampler, direction="maximize")
        for _ in range(4):
            trial = study.ask()
            x = trial.suggest_float("x", 0.0, 1.0)
            trial.suggest_categorical("c", ["a", "b"])
            trial.set_constraint("params", -1.0)
            study.tell(trial, x)
    assert not [w for w in caught if "Constraints have been set" in str(w.message)]
    random: Any = create_sampler(dataclasses.replace(s, kwargs={"independent_sampler": "random"}))
    assert isinstance(random._independent_sampler, optuna.samplers.RandomSampler)


def test_qmc_workers_share_one_sequence_but_not_their_fallback() -> None:
    """QMCSampler counts the points taken per sequence in the study: every worker must draw
    from the same one (the seed, else one derived from the study's name)."""
    seeded = SamplerConfig(name="qmc", seed=7)
    a, b = (create_sampler(seeded, worker=w, study="s") for w in (0, 1))
    assert isinstance(a, optuna.samplers.QMCSampler) and isinstance(b, optuna.samplers.QMCSampler)
    assert a._seed == b._seed == 7 and a._scramble
    draws = [cast(Any, q._independent_sampler)._rng.rng.random() for q in (a, b)]
    assert draws[0] != draws[1]  # the fallback's seed is the worker's own
    unseeded = SamplerConfig(name="qmc")
    first, second, other = (
        cast(Any, create_sampler(unseeded, worker=w, study=name))
        for w, name in ((0, "s"), (1, "s"), (0, "other"))
    )
    assert first._seed == second._seed != other._seed


def _smoke_with(tmp_path: Path, sampler: str, trials: int) -> tuple[str, optuna.Study]:
    config = _config(tmp_path, sampler, name="mixed.yaml")
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    proc = run_cli(
        "run",
        "--study",
        str(config),
        "--storage",
        url,
        "--dry-run",
        "0",
        "--n-trials",
        str(trials),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"the study has its {trials} trained trials" in proc.stdout
    output = proc.stdout + proc.stderr
    return output, optuna.load_study(study_name="mixed", storage=url)


@pytest.mark.parametrize(
    ("sampler", "relative"),
    [
        ("{name: cmaes, seed: 0, n_startup_trials: 3, popsize: 6}", "cma:generation"),
        ("{name: qmc, seed: 0, qmc_type: halton}", None),
        ("{name: tpe, seed: 0, n_startup_trials: 3, n_ei_candidates: 8}", None),
    ],
    ids=["cmaes", "qmc", "tpe-kwargs"],
)
def test_smoke_study_runs_with(tmp_path: Path, sampler: str, relative: str | None) -> None:
    output, study = _smoke_with(tmp_path, sampler, trials=10)
    trials = study.trials
    trained = [t for t in trials if t.user_attrs.get("counted") is True]
    assert len(trained) == 10
    # Not flooded: no warning per trial (experimental, independent sampling, constraints).
    assert output.lower().count("warning") <= 1, output
    if relative:  # CMA-ES itself sampled, beyond its startup and the fallback
        assert any(k.startswith(relative) for t in trials for k in t.system_attrs)
    # The study's copy of its config holds the keyword arguments as given.
    stored = yaml.safe_load(StudyRecord.of(study).config_yaml or "")
    assert stored["sampler"] == yaml.safe_load(f"s: {sampler}")["s"]
