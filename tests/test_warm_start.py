"""Warm start: a study that begins from the fitting trials of an earlier one.

Study A searches a wider space; B's is narrower in layers, shifted in learning rate and has a
smaller budget. Both run the real worker loop in a dry run (``DryTrainer``: a deterministic
score, no sleep) on SQLite.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from search.config import ConfigError, StudyConfig, WarmStartSource, parse_config
from search.record import Outcome, StudyRecord, TrialRecord, attrs, status, write_study
from search.results import best_trials
from search.slots import count_slots
from search.storage import open_storage
from search.study import open_study, shareable, study_note
from search.warm_start import carry, label
from search.worker import WorkerOptions, run_worker
from tests.conftest import run_cli
from tests.test_bad_input import _made_study, assert_refused

SPACE_A: dict[str, Any] = {
    "architecture": {
        "layers": {"int": [1, 3]},
        "blocks": {"int": [1, 2]},
        "channels": {"choice": [8, 16, 32]},
        "kernels": {"choice": [3, 5]},
        "strides": [{"choice": [1, 2]}, {"choice": [2, 4]}, {"choice": [1, 2]}],
        "pool": {"choice": [2, "global"]},
        "stem_channels": 8,
    },
    "training": {"epochs": 3, "batch_size": 100, "lr": {"float": [0.01, 0.4], "log": True}},
}
A: dict[str, Any] = {
    "name": "A",
    "objectives": ["val_accuracy"],
    "budget": {"max_params": 30000},
    "trials": 30,
    "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 10},
    "pruner": {"name": "none"},
    "data": {"dataset": "synthetic", "synthetic_size": [600, 200], "val_size": 200},
    "space": SPACE_A,
}
B_LOW, B_HIGH, B_BUDGET = 0.02, 0.3, 25000
B: dict[str, Any] = {
    **A,
    "name": "B",
    "budget": {"max_params": B_BUDGET},
    "trials": 1,
    "space": {
        "architecture": {**SPACE_A["architecture"], "layers": {"int": [1, 2]}},
        "training": {**SPACE_A["training"], "lr": {"float": [B_LOW, B_HIGH], "log": True}},
    },
    "warm_start": [{"study": "A"}],
}


def _config(raw: dict[str, Any], tmp_path: Path) -> StudyConfig:
    return parse_config(raw, path=tmp_path / f"{raw['name']}.yaml")


def _run(config: StudyConfig, url: str) -> None:
    run_worker(
        config, WorkerOptions(storage_url=url, device="cpu", dry_run=0), load_data=lambda: None
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Study A, run once for the module: (its folder, its database file)."""
    folder = tmp_path_factory.mktemp("a")
    db = folder / "a.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # the worker's checkpoints and artifacts
        _run(_config(A, folder), f"sqlite:///{db}")
    yield folder, str(db)


@pytest.fixture
def b_url(source: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of the source database, so that each test writes a study B of its own; the
    test's folder is the working directory (the worker's checkpoints and artifacts)."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "s.db"
    with sqlite3.connect(source[1]) as a, sqlite3.connect(target) as copy:
        a.backup(copy)  # with what is still in the write-ahead log
    return f"sqlite:///{target}"


def _expected(trial: optuna.trial.FrozenTrial) -> str | None:
    """Why B leaves out A's ``trial``, worked out from A's own record (None: it fits)."""
    r = TrialRecord.of(trial)
    if trial.state is not optuna.trial.TrialState.COMPLETE:
        return f"not completed ({status(trial).value})"
    if trial.params["layers"] > 2:
        return "layers outside the new space (int in [1, 2])"
    if not B_LOW <= trial.params["lr"] <= B_HIGH:
        return f"lr outside the new space (float in [{B_LOW}, {B_HIGH}])"
    if (r.params or 0) > B_BUDGET:
        return f"over the new budget ({B_BUDGET:,} parameters)"
    return None


def test_carries_what_fits_and_says_why_the_rest_does_not(b_url: str, tmp_path: Path) -> None:
    storage = open_storage(b_url)
    a = optuna.load_study(study_name="A", storage=storage)
    expected = {t.number: _expected(t) for t in a.trials}
    config = _config(B, tmp_path)

    study, created = open_study(config, storage)

    assert created
    carried = [t for t in study.trials if TrialRecord.of(t).carried]
    fits = sorted(n for n, why in expected.items() if why is None)
    assert sorted(TrialRecord.of(t).warm_start_trial or -1 for t in carried) == fits
    left_out = Counter(why for why in expected.values() if why is not None)
    assert {  # A's trials left out for each kind of reason
        "not completed (rejected)",
        "layers outside the new space (int in [1, 2])",
        f"lr outside the new space (float in [{B_LOW}, {B_HIGH}])",
        f"over the new budget ({B_BUDGET:,} parameters)",
    } <= set(left_out)
    assert StudyRecord.of(study).warm_start == [
        {"from": "A", "carried": len(fits), "left_out": dict(left_out)}
    ]
    by_number = {t.number: t for t in a.trials}
    for t in carried:
        r = TrialRecord.of(t)
        earlier = by_number[r.warm_start_trial or -1]
        assert r.warm_start_from == "A" and r.outcome is Outcome.CARRIED
        assert t.values == earlier.values and r.spec == TrialRecord.of(earlier).spec
        assert r.counted is None and r.config_key is None  # no slot, never reused
        assert all(c <= 0 for c in t.constraints.values())
        for name, value in t.params.items():  # the new space's own distributions
            distribution = t.distributions[name]
            assert distribution._contains(distribution.to_internal_repr(value))
        assert t.distributions["lr"] == optuna.distributions.FloatDistribution(
            B_LOW, B_HIGH, log=True
        )
    # Not trained here: no slot, no best; the first trial of B's own is its best.
    assert count_slots(storage, study._study_id) == 0
    assert best_trials(study) == []
    own = optuna.trial.create_trial(value=0.0, params={}, distributions={})
    study.add_trial(own)
    assert [t.number for t in best_trials(study)] == [len(study.trials) - 1]
    assert max(t.values[0] for t in carried if t.values) > 0.0


def test_the_sampler_starts_from_the_carried_trials(
    b_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TPE with n_startup_trials=10 and >= 10 carried trials: B's first trial is sampled by
    TPE's model (``TPESampler._sample``), where a fresh study's first trial is random."""
    modelled: list[int] = []
    original = optuna.samplers.TPESampler._sample

    def spy(self: optuna.samplers.TPESampler, study: Any, trial: Any, space: Any) -> Any:
        modelled.append(trial.number)
        return original(self, study, trial, space)

    monkeypatch.setattr(optuna.samplers.TPESampler, "_sample", spy)
    roomy = {**B, "budget": A["budget"]}  # A's budget: more of A's trials fit
    warm = _config(roomy, tmp_path)
    cold = _config({**roomy, "name": "cold", "warm_start": None}, tmp_path)
    assert warm.sampler.n_startup_trials == 10

    _run(cold, b_url)
    assert not [n for n in modelled if n < 10]  # a fresh study: its first 10 are random
    modelled.clear()
    _run(warm, b_url)

    study = optuna.load_study(study_name="B", storage=b_url)
    carried = [t for t in study.trials if TrialRecord.of(t).carried]
    assert len(carried) >= 10
    first_own = min(t.number for t in study.trials if not TrialRecord.of(t).carried)
    assert first_own == len(carried)
    assert modelled and modelled[0] == first_own


def test_carried_once_and_into_an_existing_study(b_url: str, tmp_path: Path) -> None:
    storage = open_storage(b_url)
    plain = _config({**B, "warm_start": None}, tmp_path)
    study, created = open_study(plain, storage)
    assert created and study.trials == []
    warm = _config(B, tmp_path)  # a source first named after the study exists
    study, created = open_study(warm, storage)
    first = [t.number for t in study.trials]
    assert not created and first
    study, _ = open_study(warm, storage)  # named again: nothing more
    assert [t.number for t in study.trials] == first
    # A carry that stopped before recording its source: finished, nothing added twice.
    write_study(study, warm_start=[])
    (report,) = carry(study, warm, storage)
    assert report.carried == len(first) and [t.number for t in study.trials] == first
    assert len(StudyRecord.of(study).warm_start or []) == 1


def test_a_multi_objective_front_leaves_carried_trials_out() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    carried = attrs(outcome=Outcome.CARRIED, warm_start_from="A", warm_start_trial=0)
    for values, user_attrs in (([0.9, 10.0], carried), ([0.8, 20.0], {}), ([0.7, 5.0], {})):
        study.add_trial(
            optuna.trial.create_trial(
                values=values, params={}, distributions={}, user_attrs=user_attrs
            )
        )
    # Trial 1 is dominated by the carried trial 0 only: it is on this study's own front.
    assert [t.number for t in best_trials(study)] == [1, 2]


def test_config_syntax(tmp_path: Path) -> None:
    config = _config(
        {**B, "warm_start": ["A", {"study": "old", "storage": "postgresql://u:secret@h/db"}]},
        tmp_path,
    )
    assert config.warm_start == (
        WarmStartSource("A"),
        WarmStartSource("old", "postgresql://u:secret@h/db"),
    )
    # No password where the study stores or shows the config.
    stored = yaml.safe_dump(shareable(config.raw)) + study_note(config)
    assert "secret" not in stored and "postgresql://u@h/db" in stored
    assert label(config.warm_start[1]) == "old in postgresql://u@h/db"
    for value, key, fragment in (
        ("A", "warm_start", "must be a list"),
        ([{"name": "A"}], "warm_start[0].name", "unknown key"),
        ([{"storage": "x.db"}], "warm_start[0].study", "is required"),
        ([" "], "warm_start[0].study", "must be a study name"),
        (["B"], "warm_start[0].study", "this study itself"),
        ([{"study": "A", "storage": 3}], "warm_start[0].storage", "must be"),
    ):
        with pytest.raises(ConfigError) as e:
            _config({**B, "warm_start": value}, tmp_path)
        assert e.value.key == key and fragment in str(e.value), str(e.value)
        assert str(tmp_path / "B.yaml") in str(e.value)


def test_the_command_line(tmp_path: Path) -> None:
    """``run --warm-start`` end to end, in processes as a user runs them."""
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({**A, "trials": 12}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**B, "warm_start": None}))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = run_cli("run", "--study", "a.yaml", "--storage", url, "--dry-run", "0", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    args = ("run", "--study", "b.yaml", "--storage", url, "--dry-run", "0", "--warm-start", "A")
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="B", storage=url)
    (entry,) = StudyRecord.of(study).warm_start or []
    total = sum(entry["left_out"].values())
    assert entry["carried"] + total == len(optuna.load_study(study_name="A", storage=url).trials)
    line = f"warm start: {entry['carried']} trials carried from study A, {total} left out ("
    assert line in proc.stdout, proc.stdout
    assert "B (created)" in proc.stdout and "0/1 trained trials so far" in proc.stdout
    best = run_cli("best", "--study", "b.yaml", "--storage", url, "--json", cwd=tmp_path)
    (shown,) = yaml.safe_load(best.stdout)["best"]
    assert shown["outcome"] != "carried"
    again = run_cli(*args, cwd=tmp_path)  # resumed: nothing carried again
    assert again.returncode == 0 and "warm start:" not in again.stdout


# --- bad input: one line, exit status 2, nothing created --------------------------------------


def test_a_missing_source_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    # No database at all yet: neither the source's nor the new study's is created.
    assert_refused(
        ["run", "--study", "smoke", "--storage", url, "--dry-run", "0", "--warm-start", "old"],
        tmp_path,
        "warm start from study 'old': storage 'sqlite:///",
    )
    _made_study(tmp_path)
    config = _b_yaml(tmp_path)
    assert_refused(
        ["run", "--study", config, "--storage", url, "--dry-run", "0", "--warm-start", "old"],
        tmp_path,
        "warm start from study 'old': no study 'old' in sqlite:///",
    )


def _b_yaml(folder: Path, **changes: Any) -> str:
    """A config for a study "b" in ``folder`` (smoke's, with ``changes``)."""
    from search.config import PROJECT_CONFIGS

    raw = yaml.safe_load((PROJECT_CONFIGS / "smoke.yaml").read_text())
    (folder / "b.yaml").write_text(yaml.safe_dump({**raw, "name": "b", **changes}))
    return "b.yaml"


def test_a_source_in_a_missing_storage_creates_nothing(tmp_path: Path) -> None:
    config = _b_yaml(tmp_path, warm_start=[{"study": "smoke", "storage": "gone.db"}])
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert_refused(
        ["run", "--study", config, "--storage", url, "--dry-run", "0"],
        tmp_path,
        "warm start from study 'smoke': storage 'sqlite:///gone.db': no database file",
    )


def test_a_source_of_other_objectives_creates_nothing(tmp_path: Path) -> None:
    url = _made_study(tmp_path)
    config = _b_yaml(tmp_path, objectives=["val_accuracy", "params"], pruner={"name": "none"})
    assert_refused(
        ["run", "--study", config, "--storage", url, "--dry-run", "0", "--warm-start", "smoke"],
        tmp_path,
        "it measured ['val_accuracy'], not 'params'",
    )
