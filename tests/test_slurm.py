"""deploy/slurm: the worker array and the PostgreSQL job.

The scripts' own logic (missing settings, finding the worker, the working folder, forwarding
a stop and waiting for the worker, the password file) runs under plain bash with a stand-in
worker. Then, on a real single-node Slurm (tests/slurm_cluster.py): a job array of real
dry-run workers on a fresh PostgreSQL database, one task cancelled in the middle of a trial
and the others finishing the study, resuming that trial from its checkpoint; and
postgres.sbatch as a job serving a worker array, stopped by scancel and started again.
"""

from __future__ import annotations

import collections
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from tests.conftest import free_port
from tests.slurm_cluster import SlurmCluster, slurm  # noqa: F401  (slurm: the fixture)

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "deploy" / "slurm" / "worker.sbatch"
POSTGRES = ROOT / "deploy" / "slurm" / "postgres.sbatch"
TRIALS = 12

STUDY_CONFIG = f"""
name: slurm
objectives: [val_accuracy]
budget: {{max_params: 30000}}
trials: {TRIALS}
sampler: {{name: random}}
pruner: {{name: none}}
data: {{dataset: synthetic, synthetic_size: [700, 200], val_size: 200}}
space:
  architecture:
    layers: 1
    blocks: 1
    channels: {{choice: [8, 12, 16]}}
    stem_channels: 8
    pool: global
  training:
    epochs: 6
    batch_size: 100
    lr: {{float: [0.01, 0.2], log: true}}
    schedule: cosine
"""

# A stand-in for optuna-search: reports how it was started, and on SIGTERM takes a second to
# "record its trial" before it exits 143, as the real worker does.
STUB = """#!/bin/bash
out="$STUB_OUT"
{ printf 'arg=%s\\n' "$@"; echo "cwd=$PWD"; echo "storage=$OPTUNA_SEARCH_STORAGE"; } >"$out"
stopping=0
trap 'echo term >>"$out"; stopping=1' TERM
echo started >>"$out"
while ((stopping == 0)); do sleep 0.05; done
sleep 1
echo recorded >>"$out"
exit 143
"""


def _bare_env(**extra: str) -> dict[str, str]:
    """PATH and HOME only, and ``extra``: none of the caller's study settings."""
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return {**env, **extra}


def _stub_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    exe = venv / "bin" / "optuna-search"
    exe.write_text(STUB)
    exe.chmod(0o755)
    return venv


def _wait_for(path: Path, pattern: str, timeout: float = 20) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, path.read_text() if path.exists() else "")
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared in {path}")


# ---------------------------------------------------------------------------------------------
# The scripts under plain bash


@pytest.mark.parametrize("script", [WORKER, POSTGRES], ids=lambda p: p.name)
def test_scripts_parse(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "STUDY is not set"),
        ({"STUDY": "smoke"}, "OPTUNA_SEARCH_STORAGE is not set"),
        (
            {"STUDY": "smoke", "OPTUNA_SEARCH_STORAGE": "postgresql://h/db", "VENV": "/nowhere"},
            "VENV=/nowhere has no bin/optuna-search",
        ),
    ],
)
def test_the_worker_script_refuses_to_start_without_its_settings(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        ["bash", str(WORKER)], env=_bare_env(**env), cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"worker.sbatch: {message}") and done.stderr.count("\n") == 1
    assert not done.stdout


def test_the_worker_script_starts_the_worker_in_the_shared_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    url_file = tmp_path / "storage-url"
    url_file.write_text("postgresql://optuna:secret@db:5432/optuna\n")
    out = tmp_path / "stub.out"
    env = _bare_env(
        STUDY="b453-space",
        OPTUNA_SEARCH_STORAGE_FILE=str(url_file),
        OPTUNA_SEARCH_ARGS="--dry-run 5  --data-dir /shared/data",
        OPTUNA_SEARCH_WORKDIR=str(shared),
        VENV=str(_stub_venv(tmp_path)),
        STUB_OUT=str(out),
        SLURM_SUBMIT_DIR=str(tmp_path),
    )
    proc = subprocess.Popen(["bash", str(WORKER)], env=env, cwd=tmp_path, text=True)
    _wait_for(out, "started")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    lines = out.read_text().splitlines()
    args = [line.removeprefix("arg=") for line in lines if line.startswith("arg=")]
    assert args[:3] == ["worker", "--study", "b453-space"]
    assert args[3:] == ["--dry-run", "5", "--data-dir", "/shared/data"]  # split on spaces
    assert f"cwd={shared}" in lines
    # The URL reaches the worker through its environment, never its command line.
    assert "storage=postgresql://optuna:secret@db:5432/optuna" in lines


@pytest.mark.parametrize("who", ["the batch shell", "every process"])
def test_the_worker_script_forwards_a_stop_and_waits_for_the_worker(
    who: str, tmp_path: Path
) -> None:
    """``scancel --batch`` signals the batch shell only; ``scancel`` every process of the task
    at once. Either way the worker stops once, and the shell exits with its status only after
    the worker has recorded its trial (Slurm kills what is left when the shell exits)."""
    out = tmp_path / "stub.out"
    env = _bare_env(
        STUDY="s",
        OPTUNA_SEARCH_STORAGE="sqlite:///s.db",
        VENV=str(_stub_venv(tmp_path)),
        STUB_OUT=str(out),
    )
    proc = subprocess.Popen(
        ["bash", str(WORKER)], env=env, cwd=tmp_path, start_new_session=True, text=True
    )
    _wait_for(out, "started")
    if who == "the batch shell":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    lines = out.read_text().splitlines()
    assert lines[-1] == "recorded"  # the shell was still there when the worker finished
    # Forwarded by the shell; with killpg also sent directly (two at once may arrive as one).
    assert lines.count("term") in ({1} if who == "the batch shell" else {1, 2})


def test_the_postgres_script_refuses_to_start_without_a_private_password_file(
    tmp_path: Path,
) -> None:
    pgdir = tmp_path / "pg"
    pgdir.mkdir()
    env = _bare_env(PGDIR=str(pgdir))

    def start() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(POSTGRES)], env=env, cwd=tmp_path, capture_output=True, text=True
        )

    done = start()
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"postgres.sbatch: no password file {pgdir}/password")
    password = pgdir / "password"
    password.write_text("0123456789abcdef0123456789abcdef\n")
    password.chmod(0o644)
    done = start()
    assert done.returncode == 2 and "open to group or others (mode 644)" in done.stderr
    password.chmod(0o600)
    password.write_text("short\n")
    done = start()
    assert done.returncode == 2 and "16 or more URL-safe characters" in done.stderr
    assert sorted(p.name for p in pgdir.iterdir()) == ["password"]  # nothing else made


# ---------------------------------------------------------------------------------------------
# A job array on a real Slurm


def _venv() -> dict[str, str]:
    """The workers run the test's own optuna-search: VENV when it is a virtual environment
    (the script's own way to find it), else PATH as exported."""
    venv = Path(sys.prefix)
    return {"VENV": str(venv)} if (venv / "bin" / "optuna-search").exists() else {}


def _study(url: str) -> list[optuna.trial.FrozenTrial]:
    if url.startswith("postgresql://"):  # SQLAlchemy's bare postgresql:// is psycopg2
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    return optuna.load_study(study_name="slurm", storage=url).get_trials(deepcopy=False)


def _trained(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t for t in trials if t.state in done and t.user_attrs.get("counted") is True]


@pytest.mark.slow
def test_a_worker_array_under_slurm_survives_a_cancelled_task(
    slurm: SlurmCluster,  # noqa: F811
    pg_url: str,
    tmp_path: Path,
) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text(STUDY_CONFIG)
    (tmp_path / "logs").mkdir()
    settings = {
        "STUDY": str(config),
        "OPTUNA_SEARCH_STORAGE": pg_url,
        "OPTUNA_SEARCH_ARGS": "--dry-run 3 --heartbeat-interval 1 --grace-period 4",
        **_venv(),
    }
    export = ",".join(["ALL", *(f"{k}={v}" for k, v in settings.items())])
    job = slurm.sbatch("--array=0-3", f"--export={export}", str(WORKER), cwd=tmp_path)
    logs = {task: tmp_path / "logs" / f"optuna-search-{job}_{task}.out" for task in range(4)}

    # The first task to reach epoch 2 of a trial is cancelled in the middle of it.
    victim, stopped = _first_in_training(logs, slurm)
    slurm.run("scancel", f"{job}_{victim}")
    slurm.wait_gone(job, timeout=180)

    tasks = {int(j["ArrayTaskId"]): j for j in slurm.jobs(job)}
    try:
        assert sorted(tasks) == [0, 1, 2, 3]
        for task, j in tasks.items():
            expected = "CANCELLED" if task == victim else "COMPLETED"
            assert j["JobState"] == expected, (task, j["JobState"], j["ExitCode"])
        # The cancelled task's worker recorded its trial and exited 143 before the shell did.
        assert "worker exited with status 143" in logs[victim].read_text()
    except AssertionError:
        print(_show(logs, slurm))
        raise

    trials = _study(pg_url)
    states = collections.Counter(t.state for t in trials)
    assert states[optuna.trial.TrialState.RUNNING] == 0
    assert states[optuna.trial.TrialState.WAITING] == 0
    trained = _trained(trials)
    assert len(trained) == TRIALS
    keys = [t.user_attrs["config_key"] for t in trained]
    assert len(keys) == len(set(keys))  # no configuration trained twice

    names = {f"slurm-{job}_{task}" for task in range(4)}
    assert {t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs} <= names
    assert {t.user_attrs["worker"] for t in trained} - {f"slurm-{job}_{victim}"}

    by_number = {t.number: t for t in trials}
    dead = by_number[stopped]
    assert dead.user_attrs["worker"] == f"slurm-{job}_{victim}"
    assert dead.state == optuna.trial.TrialState.FAIL
    assert dead.user_attrs["outcome"] == "interrupted"
    assert dead.user_attrs["reason"] == "interrupted by SIGTERM"
    [retry] = [t for t in trials if t.user_attrs.get("resumes") == stopped]
    assert retry in trained and retry.params == dead.params
    assert retry.user_attrs["resumed_from_epoch"] >= 1  # from the checkpoint in the shared folder
    assert retry.user_attrs["worker"] in names - {f"slurm-{job}_{victim}"}
    assert len(retry.user_attrs["curve"]) == 6


def _first_in_training(logs: dict[int, Path], cluster: SlurmCluster) -> tuple[int, int]:
    """The first task whose log shows a trial at epoch 2, and that trial's number."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for task, log in logs.items():
            m = re.search(r"trial (\d+) epoch 2/6", log.read_text() if log.exists() else "")
            if m:
                return task, int(m.group(1))
        time.sleep(0.05)
    raise AssertionError("no task reached epoch 2/6 in 120 s:\n" + _show(logs, cluster))


def _show(logs: dict[int, Path], cluster: SlurmCluster) -> str:
    """Every task's log and the daemons' last lines, for a failure."""
    parts = [f"===== {p.name}\n{p.read_text() if p.exists() else '(none)'}" for p in logs.values()]
    return "\n".join([*parts, cluster.log_tail()])


PASSWORD = "0123456789abcdef" * 2


@pytest.fixture
def pg_folder(slurm: SlurmCluster) -> Iterator[Path]:  # noqa: F811
    """A folder for postgres.sbatch, owned by postgres: the server refuses to run as root,
    and the cluster runs as root (it skips otherwise), so the job is submitted as postgres
    (``sbatch --uid``), in a folder of its own (pytest's tmp_path is root's, 0700)."""
    user = pwd.getpwnam("postgres")
    folder = Path(tempfile.mkdtemp(prefix="optuna-search-pg-", dir="/tmp"))
    os.chown(folder, user.pw_uid, user.pw_gid)
    prepare = f"umask 077 && mkdir logs pg && echo {PASSWORD} >pg/password"
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "bash", "-c", prepare], cwd=folder, check=True
    )
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_the_postgres_job_serves_a_worker_array_and_stops_cleanly(
    slurm: SlurmCluster,  # noqa: F811
    pg_folder: Path,
    tmp_path: Path,
) -> None:
    """postgres.sbatch as a job (initdb on the first start, listening on the node's address,
    the URL published in a private file) and a worker array that reads that file and waits
    for it; the database job stopped by scancel shuts down cleanly and withdraws the URL, and
    a second job serves the same study from the same data."""
    folder = pg_folder
    pgdir = folder / "pg"
    database = [
        "--uid=postgres",
        "--gid=postgres",
        f"--export=ALL,PGDIR={pgdir},PG_PORT={free_port()}",
        str(POSTGRES),
    ]

    config = tmp_path / "slurm.yaml"
    config.write_text(STUDY_CONFIG.replace(f"trials: {TRIALS}", "trials: 4"))
    (tmp_path / "logs").mkdir()
    first = slurm.sbatch(*database, cwd=folder)
    settings = {
        "STUDY": str(config),
        "OPTUNA_SEARCH_STORAGE_FILE": str(pgdir / "storage-url"),
        "OPTUNA_SEARCH_ARGS": "--dry-run 0.5",
        **_venv(),
    }
    export = ",".join(["ALL", *(f"{k}={v}" for k, v in settings.items())])
    array = slurm.sbatch(
        "--array=0-1",
        f"--dependency=after:{first}",
        f"--export={export}",
        str(WORKER),
        cwd=tmp_path,
    )
    try:
        slurm.wait_gone(array, timeout=120)
        assert [j["JobState"] for j in slurm.jobs(array)] == ["COMPLETED"] * 2
        url = (pgdir / "storage-url").read_text().strip()
        host = url.split("@")[1].split(":")[0]
        assert re.fullmatch(rf"postgresql://optuna:{PASSWORD}@[\d.]+:\d+/optuna", url)
        assert (pgdir / "address").read_text().strip() == url.split("@")[1].removesuffix("/optuna")
        assert not host.startswith("127.")  # the node's address: workers on other nodes reach it
        assert len(_trained(_study(url))) == 4
        wrong = url.replace(PASSWORD, "x" * 32).replace("postgresql:", "postgresql+psycopg:")
        with pytest.raises(sqlalchemy.exc.OperationalError, match="password authentication"):
            sqlalchemy.create_engine(wrong).connect()
    finally:
        slurm.run("scancel", first)
        slurm.wait_gone(first, timeout=60)
    assert not (pgdir / "address").exists() and not (pgdir / "storage-url").exists()

    second = slurm.sbatch(*database, cwd=folder)
    try:
        _wait_for(pgdir / "storage-url", "optuna", timeout=60)
        assert len(_trained(_study((pgdir / "storage-url").read_text().strip()))) == 4
    finally:
        slurm.run("scancel", second)
        slurm.wait_gone(second, timeout=60)
    text = "".join(p.read_text() for p in sorted((folder / "logs").iterdir()))
    assert text.count("initdb into") == 1
    assert text.count("database system is shut down") == 2
    assert "not properly shut down" not in text
