"""Workers as real processes on one study: crashes, restarts of the database, load.

No mocks: ``optuna-search worker`` processes, the machine's PostgreSQL (a fresh database per
test), a private PostgreSQL server where it must be restarted, and SQLite files.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.conftest import PrivateServer

CRASH_CONFIG = """
name: crash
objectives: [val_accuracy]
budget: {max_params: 30000}
trials: 6
sampler: {name: random}
pruner: {name: none}
data: {dataset: synthetic, synthetic_size: [700, 200], val_size: 200}
space:
  architecture:
    layers: 1
    blocks: 1
    channels: {choice: [8, 12, 16]}
    stem_channels: 8
    pool: global
  training:
    epochs: 6
    batch_size: 100
    lr: {float: [0.01, 0.2], log: true}
    schedule: cosine
"""

FAST_CONFIG = CRASH_CONFIG.replace("name: crash", "name: fast").replace("trials: 6", "trials: 280")


def _worker(config: Path, url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "search.cli",
            "worker",
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
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=config.parent,
        env=env,
    )


def _wait_for(log: Path, pattern: str, timeout: float = 120) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text())
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared in {log}:\n{log.read_text()}")


def _finish(procs: list[subprocess.Popen[bytes]], logs: list[Path], timeout: float = 240) -> None:
    """Wait for every worker; any that fails has its whole log printed (pytest shows captured
    output in full, where an assertion message is cut short)."""
    codes = [p.wait(timeout=timeout) for p in procs]
    for code, log in zip(codes, logs, strict=True):
        if code != 0:
            print(f"===== {log.name} exited {code} =====\n{log.read_text()}")
    assert codes == [0] * len(procs), codes


def _trained_by(log: Path) -> int:
    """The count in a worker's closing "done: N trained" line."""
    m = re.search(r"done: (\d+) trained", log.read_text())
    assert m is not None, log.read_text()
    return int(m.group(1))


def _study(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def _trained(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t for t in trials if t.state in done and t.user_attrs.get("counted") is True]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("pg_url")


def test_a_killed_worker_is_failed_retried_and_resumed(url: str, tmp_path: Path) -> None:
    config = tmp_path / "crash.yaml"
    config.write_text(CRASH_CONFIG)
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    victim = _worker(config, url, logs[0])
    # The victim creates the study; the others join once it exists.
    _wait_for(logs[0], r"trial \d+: training")
    others = [_worker(config, url, log) for log in logs[1:]]
    m = _wait_for(logs[0], r"trial (\d+) epoch 2/6")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed = int(m.group(1))
    _finish(others, logs[1:])

    trials = _study(url, "crash")
    states = collections.Counter(t.state for t in trials)
    assert states[optuna.trial.TrialState.RUNNING] == 0
    assert states[optuna.trial.TrialState.WAITING] == 0
    trained = _trained(trials)
    assert len(trained) == 6  # exactly the trial count, after the crash and the retry
    dead = next(t for t in trials if t.number == killed)
    assert dead.state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0] in trained
    assert retries[0].params == dead.params
    assert retries[0].user_attrs["resumed_from_epoch"] >= 2  # from the dead trial's checkpoint
    assert len(retries[0].user_attrs["curve"]) == 6
    keys = [t.user_attrs["config_key"] for t in trained]
    assert len(keys) == len(set(keys))  # no configuration trained twice


def test_workers_ride_out_a_database_restart(tmp_path: Path, private_pg: PrivateServer) -> None:
    config = tmp_path / "fast.yaml"
    config.write_text(FAST_CONFIG.replace("trials: 280", "trials: 40"))
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    first = _worker(config, private_pg.url, logs[0], "--dry-run", "0.3")
    _wait_for(logs[0], r"trial \d+: completed")
    second = _worker(config, private_pg.url, logs[1], "--dry-run", "0.3")
    _wait_for(logs[1], r"trial \d+: completed")
    private_pg.restart()  # every connection is terminated
    time.sleep(1)
    private_pg.restart()
    _finish([first, second], logs)
    trials = _study(private_pg.url, "fast")
    assert len(_trained(trials)) == 40
    states = collections.Counter(t.state for t in trials)
    assert states[optuna.trial.TrialState.RUNNING] == states[optuna.trial.TrialState.WAITING] == 0
    # Nothing failed but, at the very end, a surplus trial (sampled while the other worker
    # took the last slot): the restarts lost no trial.
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) <= 1 and all(t.user_attrs["outcome"] == "surplus" for t in failed)
    out = "".join(log.read_text() for log in logs)
    assert "retrying" in out  # the restart was noticed and ridden out, not missed


def test_stress_four_workers_fifty_trials_each(url: str, tmp_path: Path) -> None:
    config = tmp_path / "fast.yaml"
    config.write_text(FAST_CONFIG)
    logs = [tmp_path / f"w{i}.log" for i in range(4)]
    # The study exists before the four start together, so that they share the work evenly.
    from search.config import load_config
    from search.storage import open_storage
    from search.study import open_study

    open_study(load_config(str(config)), open_storage(url))
    procs = [_worker(config, url, log, "--dry-run", "0.01") for log in logs]
    _finish(procs, logs, timeout=600)
    trials = _study(url, "fast")
    assert len(_trained(trials)) == 280
    # A worker that samples while the last slots are taken records its trial as a surplus
    # FAIL (ignored by the samplers): at most one per other worker, nothing else failed.
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) <= 3 and all(t.user_attrs["outcome"] == "surplus" for t in failed)
    out = "".join(log.read_text() for log in logs)
    assert "database is locked" not in out and "retrying" not in out
    assert "Traceback" not in out
    per_worker = [_trained_by(log) for log in logs]
    assert sum(per_worker) == 280
    assert min(per_worker) >= 50, per_worker  # four workers, at least 50 trials each


def test_a_worker_on_another_host_needs_only_the_storage(tmp_path: Path) -> None:
    """The config is stored with the study: a worker elsewhere joins by name."""
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    (here / "remote.yaml").write_text(
        FAST_CONFIG.replace("name: fast", "name: remote").replace("trials: 280", "trials: 8")
    )
    url = f"sqlite:///{tmp_path / 'study.db'}"
    log = tmp_path / "first.log"
    first = _worker(here / "remote.yaml", url, log, "--dry-run", "0.2")
    _wait_for(log, r"trial \d+: completed")
    env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    joined = subprocess.run(
        [
            sys.executable,
            "-m",
            "search.cli",
            "worker",
            "--study",
            "remote",
            "--storage",
            url,
            "--dry-run",
            "0.2",
        ],
        capture_output=True,
        text=True,
        cwd=there,
        env=env,
        timeout=120,
    )
    assert joined.returncode == 0, joined.stderr
    assert first.wait(timeout=120) == 0
    assert re.search(r"done: [1-9]\d* trained", joined.stdout), joined.stdout
    assert len(_trained(_study(url, "remote"))) == 8


def test_enqueued_trials_are_taken_exactly_once(url: str, tmp_path: Path) -> None:
    entries = "".join(
        f"  - {{label: e{i}, architecture: {{blocks: [1], channels: [8], pool: global, "
        f"stem_channels: 8}}, training: {{lr: {0.01 + 0.005 * i:.3f}}}}}\n"
        for i in range(24)
    )
    config = tmp_path / "queue.yaml"
    config.write_text(
        FAST_CONFIG.replace("name: fast", "name: queue").replace("trials: 280", "trials: 30")
        + "enqueue:\n"
        + entries
    )
    logs = [tmp_path / f"w{i}.log" for i in range(4)]
    first = _worker(config, url, logs[0], "--dry-run", "0")
    _wait_for(logs[0], r"trial \d+: completed")
    procs = [first] + [_worker(config, url, log, "--dry-run", "0") for log in logs[1:]]
    _finish(procs, logs)
    trials = _study(url, "queue")
    taken = collections.Counter(
        t.user_attrs["enqueued"] for t in trials if "enqueued" in t.user_attrs
    )
    assert taken == collections.Counter({f"e{i}": 1 for i in range(24)})
    assert len(_trained(trials)) == 30


@pytest.mark.parametrize("training", ["dry run", "engine"])
def test_an_interrupted_trial_is_requeued_and_resumed(training: str, tmp_path: Path) -> None:
    """SIGINT in the middle of a trial: recorded as interrupted, re-queued with the same
    parameters, and the next worker resumes it from its checkpoint. A dry run takes exactly
    the path a trial that trains takes (the dry run is a trainer, not a copy of the loop)."""
    config = tmp_path / "crash.yaml"
    config.write_text(CRASH_CONFIG)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    extra = ("--dry-run", "3") if training == "dry run" else ()
    first = _worker(config, url, tmp_path / "first.log", *extra)
    m = _wait_for(tmp_path / "first.log", r"trial (\d+) epoch 2/6")
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) == 128 + signal.SIGINT
    stopped = int(m.group(1))
    trials = {t.number: t for t in _study(url, "crash")}
    dead = trials[stopped]
    assert dead.state == optuna.trial.TrialState.FAIL
    assert dead.user_attrs["outcome"] == "interrupted" and dead.user_attrs["counted"] is False
    assert dead.user_attrs["reason"] == "interrupted by SIGINT"
    [queued] = [t for t in trials.values() if t.state == optuna.trial.TrialState.WAITING]
    assert queued.user_attrs["resumes"] == stopped

    second = _worker(config, url, tmp_path / "second.log", *extra)
    _finish([second], [tmp_path / "second.log"])
    trials = {t.number: t for t in _study(url, "crash")}
    retry = trials[queued.number]
    assert retry.params == dead.params and retry.user_attrs["outcome"] in ("completed", "pruned")
    assert retry.user_attrs["resumed_from_epoch"] >= 2
    assert retry.user_attrs["curve"][:2] == dead.user_attrs["curve"][:2]
    assert len(_trained(list(trials.values()))) == 6
    assert (retry.user_attrs.get("dry_run") is True) == (training == "dry run")
