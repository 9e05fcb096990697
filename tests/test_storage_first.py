"""The storage alone is enough: every command that reads a study works from ``--storage`` and
the study's name in an empty folder; one URL serves optuna-search, Optuna's CLI and a bare
optuna-dashboard; ``studies`` lists a storage; Optuna's ``$OPTUNA_STORAGE`` is honoured."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy

from search.config import PROJECT_CONFIGS
from tests.conftest import free_port, run_cli, start_server, stop

# A study whose config exists only in the folder that made it (not a shipped config).
CONFIG = (
    (PROJECT_CONFIGS / "smoke.yaml")
    .read_text()
    .replace("description:", "name: elsewhere\ndescription:")
)


@pytest.fixture(params=["sqlite", "postgresql"])
def made(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """(URL, an empty folder): the study was made in another folder, with its config."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'studies.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    origin, empty = tmp_path / "origin", tmp_path / "empty"
    origin.mkdir()
    empty.mkdir()
    (origin / "elsewhere.yaml").write_text(CONFIG)
    proc = run_cli(
        "run", "--study", "elsewhere.yaml", "--storage", url, "--dry-run", "0", cwd=origin
    )
    assert proc.returncode == 0, proc.stderr
    return url, empty


@pytest.mark.slow
def test_every_read_command_needs_only_the_storage(made: tuple[str, Path]) -> None:
    url, empty = made
    named = ["--study", "elsewhere", "--storage", url]
    best = run_cli("best", *named, "--json", cwd=empty)
    assert best.returncode == 0, best.stderr
    assert json.loads(best.stdout)["best"][0]["trial"] >= 0
    assert run_cli("report", *named, "-o", "r.html", cwd=empty).returncode == 0
    assert "Study elsewhere" in (empty / "r.html").read_text()
    assert run_cli("export", *named, "-o", "best.yaml", cwd=empty).returncode == 0
    assert "architecture:" in (empty / "best.yaml").read_text()
    retrain = run_cli("retrain", *named, "--epochs", "1", "--device", "cpu", "--json", cwd=empty)
    assert retrain.returncode == 0, retrain.stderr
    assert json.loads(retrain.stdout)["epochs"] == 1
    studies = run_cli("studies", "--storage", url, "--json", cwd=empty)
    [listed] = json.loads(studies.stdout)["studies"]
    assert listed["name"] == "elsewhere" and listed["config"] == "elsewhere.yaml"
    assert listed["trained"] == 4 and listed["objectives"] == ["val_accuracy"]
    assert sorted(p.name for p in empty.iterdir()) == ["best.yaml", "checkpoints", "r.html"]


def test_a_given_config_must_match_the_stored_one(made: tuple[str, Path]) -> None:
    url, empty = made
    (empty / "elsewhere.yaml").write_text(CONFIG.replace("max_params: 30000", "max_params: 20000"))
    proc = run_cli("best", "--study", "elsewhere.yaml", "--storage", url, cwd=empty)
    assert proc.returncode == 2 and "different config" in proc.stderr


def test_optunas_variable_is_honoured_after_ours(made: tuple[str, Path]) -> None:
    url, empty = made
    env = {"OPTUNA_STORAGE": url}
    assert run_cli("best", "--study", "elsewhere", cwd=empty, env=env).returncode == 0
    bad = run_cli("best", "--study", "elsewhere", cwd=empty, env={"OPTUNA_STORAGE": "mysql://x"})
    assert bad.returncode == 2 and "$OPTUNA_STORAGE" in bad.stderr


@pytest.mark.slow
def test_one_postgresql_url_for_optuna_search_optuna_and_optuna_dashboard(
    pg_url: str, tmp_path: Path
) -> None:
    """The plain postgresql:// form (what users copy from a database's settings page)."""
    parsed = sqlalchemy.engine.make_url(pg_url)
    url = f"postgresql://{parsed.username}@{parsed.host}:{parsed.port}/{parsed.database}"
    made = run_cli("run", "--study", "smoke", "--storage", url, "--dry-run", "0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    best = run_cli("best", "--study", "smoke", "--storage", url, "--json", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    bin_dir = Path(sys.executable).parent
    trials = subprocess.run(
        [
            str(bin_dir / "optuna"),
            "trials",
            "--study-name",
            "smoke",
            "--storage",
            url,
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(json.loads(trials.stdout)) >= 4
    port = free_port()
    bare = [str(bin_dir / "optuna-dashboard"), url, "--host", "127.0.0.1", "--port", str(port)]
    dashboard = start_server(bare, tmp_path, port)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10)
        names = [s["study_name"] for s in json.loads(body.read())["study_summaries"]]
        assert names == ["smoke"]
    finally:
        stop(dashboard)
