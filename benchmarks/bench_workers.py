"""Throughput of 1, 2, 4 and 8 workers on one study, SQLite and PostgreSQL.

Each run is the real thing but for training: ``optuna-search run --study b453-space
--workers K --dry-run SECONDS`` starts K worker processes that sample the space through Optuna
(the default TPE sampler), check the budget, claim slots, record and tell, in the real storage;
a feasible trial then sleeps SECONDS where it would train on a GPU. Throughput is trained
trials per second between the first trial's start and the last trial's end (read back from
the study), so process start-up is left out; speed-up is against one worker, efficiency is
speed-up / K.

Run: python benchmarks/bench_workers.py [--workers 1,2,4,8] [--seconds 1.0] [--per-worker 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path

import optuna
import sqlalchemy


def run(url: str, workers: int, per_worker: int, seconds: float, cwd: Path) -> float:
    """Trained trials per second of one run."""
    trials = workers * per_worker
    env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "search.cli",
            "run",
            "--study",
            "b453-space",
            "--storage",
            url,
            "--workers",
            str(workers),
            "--n-trials",
            str(trials),
            "--dry-run",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    study = optuna.load_study(study_name="b453-space", storage=url)
    trained = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get("counted") is True
        and t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    assert len(trained) == trials, (len(trained), trials)
    start = min(t.datetime_start for t in trained)
    end = max(t.datetime_complete for t in trained)
    return trials / (end - start).total_seconds()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--workers", default="1,2,4,8")
    p.add_argument("--seconds", type=float, default=1.0, help="stand-in GPU time per trial")
    p.add_argument("--per-worker", type=int, default=10, help="trained trials per worker")
    p.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="an admin URL: a scratch database is created and dropped per run",
    )
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    counts = [int(k) for k in args.workers.split(",")]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, optuna {optuna.__version__}, "
        f"{date.today()}; {args.seconds:g} s per trial, {args.per_worker} trials per worker"
    )
    admin = sqlalchemy.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    print(f"{'storage':<11} {'workers':>7} {'trials/s':>9} {'speed-up':>9} {'efficiency':>11}")
    for storage in ("SQLite", "PostgreSQL"):
        base = None
        for k in counts:
            with tempfile.TemporaryDirectory() as tmp:
                if storage == "SQLite":
                    rate = run(
                        f"sqlite:///{tmp}/study.db", k, args.per_worker, args.seconds, Path(tmp)
                    )
                else:
                    name = f"bench_{uuid.uuid4().hex[:8]}"
                    with admin.connect() as conn:
                        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
                    try:
                        url = args.pg.rsplit("/", 1)[0] + f"/{name}"
                        rate = run(url, k, args.per_worker, args.seconds, Path(tmp))
                    finally:
                        with admin.connect() as conn:
                            conn.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            base = base or rate
            print(
                f"{storage:<11} {k:>7} {rate:>9.2f} {rate / base:>8.2f}x {rate / base / k:>10.0%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
