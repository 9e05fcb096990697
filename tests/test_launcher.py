"""The launcher: worker processes per slot, output relayed, signals forwarded once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from search.launcher import device_slots, gpu_slots
from tests.conftest import run_cli
from tests.test_worker import CRASH_CONFIG, _study, _wait_for


def test_slots() -> None:
    slots = gpu_slots([0, 3], per_gpu=2)
    assert [(s.name, s.visible_gpu, s.device) for s in slots] == [
        ("w0 gpu0", "0", "cuda:0"),
        ("w1 gpu0", "0", "cuda:0"),
        ("w2 gpu3", "3", "cuda:0"),
        ("w3 gpu3", "3", "cuda:0"),
    ]
    assert [s.name for s in device_slots("cpu", 2)] == ["w0 cpu", "w1 cpu"]


def test_sigterm_to_the_launcher_stops_every_worker_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "long.yaml"
    config.write_text(
        CRASH_CONFIG.replace("name: crash", "name: long")
        .replace("trials: 6", "trials: 100")
        .replace("epochs: 6", "epochs: 40")
    )
    url = f"sqlite:///{tmp_path / 'study.db'}"
    log = tmp_path / "launcher.log"
    env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "search.cli",
            "run",
            "--study",
            str(config),
            "--storage",
            url,
            "--workers",
            "3",
            "--device",
            "cpu",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env=env,
    )
    for i in range(3):  # every worker is in the middle of training
        _wait_for(log, rf"/w{i}: trial \d+ epoch 1/40")  # each line names its worker
    sent = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    code = launcher.wait(timeout=60)
    stopped_in = time.monotonic() - sent
    out = log.read_text()
    assert code == 128 + signal.SIGTERM, out
    assert stopped_in < 10, f"took {stopped_in:.1f} s"
    assert len(re.findall(r"/w\d: done: .*stopped by SIGTERM", out)) == 3, out

    trials = _study(url, "long")
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    interrupted = [t for t in trials if t.user_attrs.get("outcome") == "interrupted"]
    assert len(interrupted) == 3
    for t in interrupted:
        assert t.state == optuna.trial.TrialState.FAIL
        assert t.user_attrs["reason"] == "interrupted by SIGTERM"
    # Each is re-queued with the same parameters, to resume from its checkpoint next run.
    waiting = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert sorted(t.user_attrs["resumes"] for t in waiting) == sorted(t.number for t in interrupted)
    assert len(list((tmp_path / "checkpoints" / "long").glob("*.pt"))) == 3


def test_gpus_that_do_not_exist_are_refused(tmp_path: Path) -> None:
    import torch

    count = torch.cuda.device_count()
    proc = run_cli(
        "run",
        "--study",
        "smoke",
        "--gpus",
        f"0,{count}",
        "--storage",
        f"sqlite:///{tmp_path / 'x.db'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert f"this machine has {count} GPU(s)" in proc.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--gpus", "0", "--workers", "2"], "not both"),
        (["--trials-per-gpu", "2"], "--trials-per-gpu needs --gpus"),
        (["--workers", "0"], "at least 1"),
        (["--heartbeat-interval", "5", "--grace-period", "5"], "--grace-period longer"),
    ],
)
def test_bad_worker_flags(flags: list[str], fragment: str, tmp_path: Path) -> None:
    proc = run_cli(
        "run",
        "--study",
        "smoke",
        *flags,
        "--storage",
        f"sqlite:///{tmp_path / 'x.db'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
