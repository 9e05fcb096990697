"""benchmarks/gpu_proof.sh: the whole proof end to end in its CPU mode (``--tiny``), on a tiny
fake CIFAR-10 in the layout of ``../shared/data`` (a .tar.gz of train/<class>/*.jpg and
test/<class>/*.jpg), and the script itself through shellcheck."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from PIL import Image

from model.data import CIFAR10_CLASSES, synthetic_cifar10
from search.record import Outcome, TrialRecord, status
from tests.test_data import write_tarball

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_proof.sh"


def write_fake_cifar_jpeg(tree: Path, tarball: Path, *, train: int, test: int) -> Path:
    """A learnable stand-in (``synthetic_cifar10``) saved as JPEG files, quality 75 like the
    real copy, class folders named as CIFAR-10's, packed as a .tar.gz."""
    splits = synthetic_cifar10(n_train=train, n_test=test)
    for split, data in zip(("train", "test"), splits, strict=True):
        pixels = data.images.permute(0, 2, 3, 1).numpy()
        for i, (image, label) in enumerate(zip(pixels, data.labels.tolist(), strict=True)):
            folder = tree / split / CIFAR10_CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.jpg", quality=75)
    return write_tarball(tree, tarball)


def test_shell_scripts_are_shellcheck_clean() -> None:
    """This script and every other one shipped (benchmarks, Slurm jobs, CI): warnings fail."""
    if shutil.which("shellcheck") is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is missing (.ci/run installs Debian's shellcheck)")
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    root = SCRIPT.parent.parent
    scripts = [
        *sorted((root / "benchmarks").glob("*.sh")),
        *sorted(root.glob("deploy/slurm/*.sbatch")),
    ]
    assert SCRIPT in scripts
    command = ["shellcheck", "-S", "warning", *map(str, scripts), str(root / ".ci" / "run")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_tiny_proof_runs_every_phase_and_summarises(tmp_path: Path) -> None:
    tarball = write_fake_cifar_jpeg(
        tmp_path / "tree", tmp_path / "src" / "cifar10-jpeg.tar.gz", train=1200, test=200
    )
    out = tmp_path / "proof"
    env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    result = subprocess.run(
        ["bash", str(SCRIPT), "--tiny", str(tarball), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-6000:]

    summary = json.loads((out / "summary.json").read_text())
    for key in ("test_accuracy", "best_val_accuracy", "reference_test_accuracy"):
        assert 0 <= summary[key] <= 1, (key, summary[key])
    assert 0 < summary["params"] <= 5_000_000
    assert 0 < summary["gpu_minutes"] < 7
    phases = summary["phase_seconds"]
    assert set(phases) == {"data", "engine", "search", "retrain", "reference", "report"}
    assert all(s == "ok" or s.startswith("stopped") for s in summary["phase_status"].values())
    assert summary["retrain_epochs"] == summary["reference_epochs"] >= 1
    assert summary["mode"] == "tiny (CPU)"

    # The table: printed, in the summary, four sections.
    table = summary["table"]
    assert table in result.stdout
    for section in (
        "**1. Engine against the paper-style loop**",
        "**2. Search**",
        "**3. The best configuration retrained**",
        "**4. Reference: the paper's ResNet26-B453",
    ):
        assert section in table
    assert table.count("|---") >= 4

    assert (out / "report.html").stat().st_size > 100_000
    # The study: in OUT_DIR, its trials trained, the retrain recorded on the best one.
    study = optuna.load_study(study_name="gpu-proof-tiny", storage=f"sqlite:///{out}/proof.db")
    trials = study.get_trials()
    assert sum(status(t) in (Outcome.COMPLETED, Outcome.PRUNED) for t in trials) >= 1
    assert summary["search"]["trials"] == len(trials)
    retrain = TrialRecord.of(study.best_trial).retrain
    assert retrain is not None and retrain.test_accuracy == summary["test_accuracy"]
