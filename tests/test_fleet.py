"""A fleet of workers as a scheduler runs it: simultaneous first starts, group signals, dead
launchers, closed pipes, and 64 workers on one stock PostgreSQL.

Real processes, the machine's PostgreSQL (a fresh database per test) and SQLite files; trials
are dry runs (``search.trainer.DryTrainer``), which take the path a GPU trial takes.
"""

from __future__ import annotations

import collections
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from search.record import FAILED, Outcome, TrialRecord, status
from tests.test_worker import CRASH_CONFIG

FLEET_CONFIG = (
    CRASH_CONFIG.replace("name: crash", "name: fleet")
    .replace("trials: 6", "trials: 16")
    # Every process configured with the same seed: each must still draw its own suggestions.
    .replace("sampler: {name: random}", "sampler: {name: random, seed: 0}")
)
CLI = (sys.executable, "-m", "search.cli")
FINISHED = {Outcome.COMPLETED, Outcome.PRUNED, Outcome.REJECTED, Outcome.REUSED}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}


def _start(command: str, config: Path, url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *CLI,
            command,
            "--study",
            str(config),
            "--storage",
            url,
            "--device",
            "cpu",
            "--heartbeat-interval",
            "1",
            "--grace-period",
            "4",
            *extra,
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=config.parent,
        env=_env(),
    )


def _config(tmp_path: Path, text: str = FLEET_CONFIG) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def _wait_for(log: Path, pattern: str, count: int = 1, timeout: float = 180) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(pattern, log.read_text(errors="replace"))
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} x{count} never appeared in {log}:\n{log.read_text()}")


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="fleet", storage=url).get_trials(deepcopy=False)


def _trained(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if TrialRecord.of(t).trained and TrialRecord.of(t).counted]


def _assert_clean_finish(trials: list[optuna.trial.FrozenTrial], total: int) -> None:
    """The exact count, nothing left running or waiting, no configuration trained twice, and
    no trial failed but those interrupted (re-queued) or surplus."""
    states = collections.Counter(t.state for t in trials)
    assert states[optuna.trial.TrialState.RUNNING] == states[optuna.trial.TrialState.WAITING] == 0
    trained = _trained(trials)
    assert len(trained) == total
    keys = [TrialRecord.of(t).config_key for t in trained]
    assert len(keys) == len(set(keys)), "a configuration trained twice"
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL:
            assert status(t) is Outcome.INTERRUPTED or TrialRecord.of(t).outcome is Outcome.SURPLUS


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleet.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.slow
def test_simultaneous_first_starts_join_one_study(url: str, tmp_path: Path) -> None:
    """A job array's tasks start within milliseconds of each other on a fresh database: all
    join one study (no schema race, no 'already exists'), and configured seeds do not make
    them train the same configurations."""
    config = _config(tmp_path)
    n = 8 if url.startswith("postgresql") else 4
    logs = [tmp_path / f"w{i}.log" for i in range(n)]
    procs = [_start("worker", config, url, log, "--dry-run", "0.3") for log in logs]
    codes = [p.wait(timeout=300) for p in procs]
    out = "\n".join(f"== {log.name}\n{log.read_text()}" for log in logs)
    assert codes == [0] * n, out
    assert "Traceback" not in out and "already exists" not in out
    assert optuna.get_all_study_names(storage=url) == ["fleet"]
    trials = _trials(url)
    _assert_clean_finish(trials, 16)
    # Every process named itself apart (host/pidN), and several took part.
    workers = {TrialRecord.of(t).worker for t in trials}
    assert workers <= {f"{platform.node()}/pid{p.pid}" for p in procs}, workers
    assert len(workers) >= 2


@pytest.mark.slow
def test_group_sigterm_is_one_stop(tmp_path: Path) -> None:
    """SIGTERM to the launcher and its workers at once (scancel, systemd, kill -- -PGID): each
    worker records its trial as interrupted and re-queues it; resuming ends with the exact
    count."""
    config = _config(tmp_path)
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    log = tmp_path / "run.log"
    launcher = _start("run", config, url, log, "--workers", "3", "--dry-run", "12")
    _wait_for(log, r"/(w\d): trial \d+ epoch 1/6", count=3)
    workers = _children(launcher.pid)
    assert len(workers) == 3
    for pid in [launcher.pid, *workers]:
        os.kill(pid, signal.SIGTERM)
    assert launcher.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()
    text = log.read_text()
    assert "exiting at once" not in text and "Traceback" not in text, text
    trials = _trials(url)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    interrupted = [t for t in trials if status(t) is Outcome.INTERRUPTED]
    assert len(interrupted) == 3
    queued = {TrialRecord.of(t).resumes for t in trials if t.state.name == "WAITING"}
    assert queued == {t.number for t in interrupted}

    again = _start("run", config, url, tmp_path / "again.log", "--workers", "3", "--dry-run", "1")
    assert again.wait(timeout=300) == 0, (tmp_path / "again.log").read_text()
    trials = _trials(url)
    _assert_clean_finish(trials, 16)
    resumed = [t for t in trials if TrialRecord.of(t).resumes in {t.number for t in interrupted}]
    assert len(resumed) == 3 and all(TrialRecord.of(t).resumed_from_epoch for t in resumed)


@pytest.mark.slow
def test_a_dead_launcher_takes_its_workers_down_cleanly(tmp_path: Path) -> None:
    """kill -9 of ``run``: its workers notice within seconds, record and re-queue their trials
    and exit; no trial that had finished is recorded as failed."""
    config = _config(tmp_path)
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    log = tmp_path / "run.log"
    launcher = _start("run", config, url, log, "--workers", "2", "--dry-run", "12")
    _wait_for(log, r"/(w\d): trial \d+ epoch 1/6", count=2)
    workers = _children(launcher.pid)
    assert len(workers) == 2
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "workers outlived their launcher"
    trials = _trials(url)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL:
            assert TrialRecord.of(t).outcome not in FINISHED, (t.number, t.user_attrs)
    interrupted = {t.number for t in trials if status(t) is Outcome.INTERRUPTED}
    assert len(interrupted) == 2
    queued = {TrialRecord.of(t).resumes for t in trials if t.state.name == "WAITING"}
    assert queued == interrupted


@pytest.mark.slow
@pytest.mark.parametrize("workers", [None, "2"])
def test_a_closed_stdout_fails_no_trial(workers: str | None, tmp_path: Path) -> None:
    """``run ... | head -1``: the reader goes away after one line; the search goes on and
    every trial is recorded as it ends."""
    config = _config(tmp_path)
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    extra = ["--dry-run", "0.2"] + (["--workers", workers] if workers else [])
    proc = subprocess.Popen(
        [*CLI, "run", "--study", str(config), "--storage", url, "--device", "cpu", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=_env(),
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # what head -1 does after its line
    assert proc.wait(timeout=300) == 0
    trials = _trials(url)
    _assert_clean_finish(trials, 16)
    assert not [t for t in trials if status(t) in FAILED - {Outcome.FAILED}]


@pytest.mark.slow
def test_64_workers_on_a_stock_postgresql(pg_url: str, tmp_path: Path) -> None:
    """64 workers against PostgreSQL's default max_connections (100): each holds at most 2
    connections, a refused one is waited for; no storage error, the exact count, and every
    worker runs to the end."""
    text = FLEET_CONFIG.replace("trials: 16", "trials: 96")
    config = _config(tmp_path, text)
    from search.config import load_config
    from search.storage import open_storage
    from search.study import open_study

    open_study(load_config(str(config)), open_storage(pg_url))  # the study, before the rush
    logs = [tmp_path / f"w{i:02d}.log" for i in range(64)]
    procs = [_start("worker", config, pg_url, log, "--dry-run", "3") for log in logs]
    codes = [p.wait(timeout=900) for p in procs]
    failed = [
        f"== {log.name} ({c})\n{log.read_text()}" for c, log in zip(codes, logs, strict=True) if c
    ]
    assert not failed, "\n".join(failed)
    out = "".join(log.read_text() for log in logs)
    assert "Traceback" not in out and "StorageError" not in out
    assert all("done:" in log.read_text() for log in logs)
    _assert_clean_finish(_trials(pg_url), 96)
