"""Studies written by earlier versions are read by every command and resumed by ``run``.

``fixtures/study-2fc1c7f.sql`` is a SQLite dump of the smoke study as commit 2fc1c7f wrote it
(before the trial record, the trainer and the spec's key names): real training, completed,
pruned, over-budget, reused and interrupted trials, a re-queued trial still waiting, and a
``retrain`` result on the best trial.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import optuna
import pytest

from search.config import load_config
from search.record import Outcome, StudyRecord, TrialRecord, VerdictLabel, status
from search.study import identity
from tests.conftest import run_cli

DUMP = Path(__file__).parent / "fixtures" / "study-2fc1c7f.sql"


@pytest.fixture
def old_study(tmp_path: Path) -> str:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(DUMP.read_text())
    return f"sqlite:///{db}"


def test_the_fixture_is_small() -> None:
    assert DUMP.stat().st_size < 200_000


def test_the_record_reads_every_trial(old_study: str) -> None:
    study = optuna.load_study(study_name="smoke", storage=old_study)
    outcomes = {status(t) for t in study.trials}
    assert {Outcome.COMPLETED, Outcome.PRUNED, Outcome.REJECTED, Outcome.REUSED} <= outcomes
    assert {Outcome.INTERRUPTED, Outcome.WAITING} <= outcomes
    for t in study.trials:
        r = TrialRecord.of(t)
        if r.outcome is Outcome.REJECTED:
            assert r.verdict is VerdictLabel.OVER_BUDGET and r.reason and r.params
        if r.trained:
            assert r.spec and r.recipe and r.config_key and r.curve and r.counted is True
    best = TrialRecord.of(study.best_trial)
    assert best.retrain is not None and best.retrain.has_test_accuracy
    # The shipped config now uses the spec's key names; the study's fingerprint is unchanged.
    assert StudyRecord.of(study).identity == identity(load_config("smoke"))


def test_best_report_and_export_read_it(old_study: str, tmp_path: Path) -> None:
    best = run_cli("best", "--study", "smoke", "--storage", old_study, "--json", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    [found] = json.loads(best.stdout)["best"]
    assert found["trial"] == 11 and found["retrain"]["test_accuracy"] == pytest.approx(0.52)
    assert found["train_command"].startswith("optuna-search train --blocks 1 --channels 32")

    report = run_cli(
        "report", "--study", "smoke", "--storage", old_study, "-o", "r.html", cwd=tmp_path
    )
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "<span class=n>1</span><span class=what>reused</span>" in html
    assert "test accuracy <b>52.00%</b>" in html

    export = run_cli(
        "export", "--study", "smoke", "--storage", old_study, "-o", "best.yaml", cwd=tmp_path
    )
    assert export.returncode == 0, export.stderr
    assert "channels: [32]" in (tmp_path / "best.yaml").read_text()


def test_run_resumes_it(old_study: str, tmp_path: Path) -> None:
    before = optuna.load_study(study_name="smoke", storage=old_study).trials
    [waiting] = [t for t in before if t.state == optuna.trial.TrialState.WAITING]
    proc = run_cli(
        "run",
        "--study",
        "smoke",
        "--storage",
        old_study,
        "--n-trials",
        "16",
        "--dry-run",
        "0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(resumed)" in proc.stdout and "the study has its 16 trained trials" in proc.stdout
    after = optuna.load_study(study_name="smoke", storage=old_study).trials
    taken = next(t for t in after if t.number == waiting.number)
    assert taken.state != optuna.trial.TrialState.WAITING  # the re-queued trial ran
    assert TrialRecord.of(taken).resumes == TrialRecord.of(waiting).resumes
    trained = [t for t in after if TrialRecord.of(t).trained and TrialRecord.of(t).counted]
    assert len(trained) == 16
