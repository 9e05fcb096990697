"""End to end: ``optuna-search run --study smoke`` as a real process, on SQLite and PostgreSQL.

The resulting study is read back with Optuna's own ``optuna`` CLI and API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.conftest import run_cli

SMOKE_TRIALS = 4


def _trials(url: str, name: str = "smoke") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def _trained(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [
        t
        for t in trials
        if t.user_attrs.get("counted") is True
        and t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("pg_url")


def test_run_smoke_resume_and_read_back(storage_url: str, tmp_path: Path) -> None:
    proc = run_cli("run", "--study", "smoke", "--storage", storage_url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "created" in proc.stdout and f"the study has its {SMOKE_TRIALS} trained" in proc.stdout
    trials = _trials(storage_url)
    trained = _trained(trials)
    assert len(trained) == SMOKE_TRIALS
    rejected = [t for t in trials if t.user_attrs.get("outcome") == "rejected"]
    for t in rejected:  # recorded so the sampler learns: constraint and attrs, never trained
        assert t.state == optuna.trial.TrialState.PRUNED
        assert t.constraints["params"] > 0 or t.user_attrs["verdict"] == "invalid"
        assert "reason" in t.user_attrs and "curve" not in t.user_attrs
    for t in trained:
        assert t.user_attrs["params"] <= 30_000 and t.constraints["params"] <= 0
        assert len(t.user_attrs["curve"]) == t.user_attrs["epochs_trained"] >= 1
        assert t.user_attrs["device"].startswith("cpu") and t.user_attrs["seed"] >= 0
        assert (
            t.user_attrs["torch_version"] and t.user_attrs["optuna_version"] == optuna.__version__
        )
    # The enqueued trial ran exactly once, first.
    enqueued = [t for t in trials if "enqueued" in t.user_attrs]
    assert [t.number for t in enqueued] == [0]
    assert enqueued[0].params["channels_1"] == 16

    # Optuna's own CLI reads the study.
    optuna_cli = str(Path(sys.executable).parent / "optuna")
    out = subprocess.run(
        [optuna_cli, "trials", "--study-name", "smoke", "--storage", storage_url, "-f", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(json.loads(out.stdout)) == len(trials)

    # Rerunning finishes nothing more: the count is a total for the study.
    again = run_cli("run", "--study", "smoke", "--storage", storage_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stdout and "0 trained" in again.stdout
    assert len(_trials(storage_url)) == len(trials)

    # A larger total runs only the remainder; the enqueued trial is not run again.
    more = run_cli(
        "run", "--study", "smoke", "--storage", storage_url, "--n-trials", "6", cwd=tmp_path
    )
    assert more.returncode == 0, more.stderr
    trials = _trials(storage_url)
    assert len(_trained(trials)) == 6
    assert len([t for t in trials if "enqueued" in t.user_attrs]) == 1

    best = run_cli("best", "--study", "smoke", "--storage", storage_url, "--json", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    top = json.loads(best.stdout)["best"][0]
    assert top["val_accuracy"] == max(t.value for t in trials if t.value is not None)
    assert top["train_command"].startswith("optuna-search train --blocks")


def test_exported_config_retrains_and_retrain_records_on_the_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert run_cli("run", "--study", "smoke", "--storage", url, cwd=tmp_path).returncode == 0
    out = tmp_path / "best.yaml"
    proc = run_cli("export", "--study", "smoke", "--storage", url, "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr and out.exists()
    trained = run_cli(
        "train",
        "--config",
        str(out),
        "--epochs",
        "1",
        "--dataset",
        "synthetic",
        "--val-size",
        "200",
        "--device",
        "cpu",
        "--json",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["epochs"] == 1

    proc = run_cli(
        "retrain",
        "--study",
        "smoke",
        "--storage",
        url,
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["epochs"] == 2 and 0 <= record["test_accuracy"] <= 1
    best = optuna.load_study(study_name="smoke", storage=url).best_trial
    assert best.user_attrs["retrain"]["test_accuracy"] == record["test_accuracy"]


BAD_CONFIGS = {
    "unknown key": ("trails: 3\n", "trails"),
    "low > high": ("space:\n  training:\n    lr: {float: [0.5, 0.1]}\n", "low 0.5"),
    "over budget": ("budget: {max_params: 100}\n", "no configuration fits"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_bad_config_exits_2_and_creates_no_study(
    case: str, storage_url: str, tmp_path: Path
) -> None:
    smoke = (Path(__file__).parent.parent / "study_configs" / "smoke.yaml").read_text()
    extra, fragment = BAD_CONFIGS[case]
    if extra.startswith("space:"):
        smoke = smoke.replace("    lr: {float: [0.01, 0.2], log: true}\n", "")
        smoke = smoke.replace("  training:\n", "  training:\n    lr: {float: [0.5, 0.1]}\n")
    elif extra.startswith("budget:"):
        smoke = smoke.replace("  max_params: 30000", "  max_params: 100")
    else:
        smoke += extra
    path = tmp_path / "bad.yaml"
    path.write_text(smoke)
    proc = run_cli("run", "--study", str(path), "--storage", storage_url, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert fragment in proc.stderr and "bad.yaml" in proc.stderr
    if storage_url.startswith("sqlite"):
        assert not (tmp_path / "study.db").exists()
    else:
        assert optuna.study.get_all_study_names(storage=storage_url) == []


def test_bad_storage_and_data_are_one_line_errors(tmp_path: Path) -> None:
    cases = [
        (["--storage", "mongodb://localhost/x"], "unsupported storage"),
        (["--storage", "postgresql://u:hunter2@127.0.0.1:1/x"], "cannot open storage"),
        (["--storage", "sqlite:///no/such/folder/x.db"], "does not exist"),
        (["--storage", "sqlite:///x.db", "--device", "tpu"], "unknown device"),
        (["--storage", "sqlite:///x.db", "--n-trials", "0"], "--n-trials"),
        (["--storage", "sqlite:///x.db", "--timeout", "soon"], "not a duration"),
    ]
    for extra, fragment in cases:
        proc = run_cli("run", "--study", "smoke", *extra, cwd=tmp_path)
        assert proc.returncode == 2, (extra, proc.stderr)
        error = proc.stderr.strip().splitlines()[-1]  # a CPU-time note may come before it
        assert error.startswith("optuna-search run: error:") and fragment in error, proc.stderr
        assert "hunter2" not in proc.stderr + proc.stdout
    missing = tmp_path / "cfg.yaml"
    smoke = (Path(__file__).parent.parent / "study_configs" / "smoke.yaml").read_text()
    missing.write_text(
        smoke.replace("dataset: synthetic", f"dataset: cifar10\n  data_dir: {tmp_path / 'nodata'}")
    )
    proc = run_cli("run", "--study", str(missing), "--storage", "sqlite:///x.db", cwd=tmp_path)
    assert proc.returncode == 2 and "nodata" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.db").exists()  # nothing half-written


def test_no_gpu_is_said_before_the_first_trial(tmp_path: Path) -> None:
    """b453-space on the CPU: refused with the expected epoch time, before anything else."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = run_cli(
        "run", "--study", "b453-space", "--storage", "sqlite:///x.db", cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert "no GPU in use" in error and "per epoch" in error and "--device cpu" in error
    assert not (tmp_path / "x.db").exists()
