"""Throughput of 1 to 64 workers on one study, SQLite and PostgreSQL.

Each run is the real thing but for training: ``optuna-search run --study <b453-space>
--workers K --dry-run SECONDS`` starts K worker processes that sample the space through Optuna
(the default TPE sampler), check the budget, claim slots, record and tell, in the real storage;
a feasible trial then sleeps SECONDS where it would train on a GPU. The study is b453-space
with one-epoch trials and no pruner, so that a trial is exactly: ask, budget check, sleep,
tell (a dry run reports every epoch, which a real trial spreads over minutes). Throughput is
measured in the steady state, read back from the study: from the moment the last worker
started its first trial to the moment the first worker finished its last, each trained trial
counting by the share of its wall time inside that span. Process start-up (8 Python
processes importing torch on 2 cores take seconds) and the stragglers of the last round are
left out, and nothing is lost at the edges; speed-up is against one worker, efficiency is
speed-up / K.

On PostgreSQL it also reports the most connections the run's database had open at once
(polled every 0.2 s from a connection of the benchmark's own, taken before the workers start):
the budget is 2 a worker, 1 most of the time.

Run: python benchmarks/bench_workers.py [--workers 1,2,4,8] [--seconds 3] [--window 90]
     [--storages sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import date, datetime
from pathlib import Path

import optuna
import sqlalchemy

from search.record import TrialRecord


def _config(cwd: Path) -> Path:
    """b453-space with one-epoch trials, no pruner and nothing enqueued."""
    import yaml

    from search.config import PROJECT_CONFIGS

    raw = yaml.safe_load((PROJECT_CONFIGS / "b453-space.yaml").read_text())
    raw.update(name="b453-space", pruner={"name": "none"})
    raw.pop("enqueue")
    raw["space"]["training"]["epochs"] = 1
    raw["space"]["training"]["warmup_epochs"] = {"float": [0, 1]}
    path = cwd / "b453-bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class PeakConnections:
    """The most connections to database ``name`` seen while the block runs."""

    def __init__(self, admin: sqlalchemy.engine.Engine | None, name: str) -> None:
        self.admin, self.name, self.peak = admin, name, 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakConnections:
        if self.admin is not None:
            self._conn = self.admin.connect()  # before the workers: it is sure of a slot
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        query = sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :n")
        while not self._stop.wait(0.2):
            self.peak = max(
                self.peak, int(self._conn.execute(query, {"n": self.name}).scalar_one())
            )

    def __exit__(self, *exc: object) -> None:
        if self.admin is not None:
            self._stop.set()
            self._thread.join()
            self._conn.close()


def run(url: str, workers: int, window: float, seconds: float, cwd: Path) -> tuple[float, float]:
    """Trained trials per second in the steady state, and that span's length in seconds.

    Each worker runs with no trial limit for ``window`` seconds from its own start
    (``--timeout``); the steady-state span is that, less the start-up stagger between workers.
    """
    env = {k: v for k, v in os.environ.items() if k != "OPTUNA_SEARCH_STORAGE"}
    cmd = [
        sys.executable,
        "-m",
        "search.cli",
        "run",
        "--study",
        str(_config(cwd)),
        "--storage",
        url,
        "--workers",
        str(workers),
        "--n-trials",
        "100000",
        "--timeout",
        str(window),
        "--dry-run",
        str(seconds),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    study = optuna.load_study(study_name="b453-space", storage=url)
    # (trial, start, end) of every finished trial.
    finished: list[tuple[optuna.trial.FrozenTrial, datetime, datetime]] = [
        (t, t.datetime_start, t.datetime_complete)
        for t in study.get_trials(deepcopy=False)
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    by_worker: dict[str, list[tuple[datetime, datetime]]] = {}
    for t, start, end in finished:
        by_worker.setdefault(str(TrialRecord.of(t).worker), []).append((start, end))
    if len(by_worker) != workers:
        raise SystemExit(f"expected {workers} workers in the study, found {len(by_worker)}")
    # The steady state: every worker has started, none has stopped.
    t0 = max(min(start for start, _ in spans) for spans in by_worker.values())
    t1 = min(max(end for _, end in spans) for spans in by_worker.values())
    span = (t1 - t0).total_seconds()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    share = 0.0
    for t, start, end in finished:
        if TrialRecord.of(t).counted is True and t.state in done:
            inside = (min(end, t1) - max(start, t0)).total_seconds()
            share += max(inside, 0.0) / (end - start).total_seconds()
    return share / span, span


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--workers", default="1,2,4,8")
    p.add_argument("--seconds", type=float, default=3.0, help="stand-in GPU time per trial")
    p.add_argument("--window", type=float, default=90.0, help="seconds each worker runs")
    p.add_argument("--storages", default="sqlite,postgresql")
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
        f"{date.today()}; {args.seconds:g} s per trial, {args.window:g} s window per run"
    )
    admin = sqlalchemy.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    print(
        f"{'storage':<11} {'workers':>7} {'span s':>7} {'trials/s':>9} {'speed-up':>9} "
        f"{'efficiency':>11} {'peak conns':>11}"
    )
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    for storage in (names[s] for s in args.storages.split(",")):
        base = None
        for k in counts:
            with tempfile.TemporaryDirectory() as tmp:
                peak = "-"
                if storage == "SQLite":
                    rate, span = run(
                        f"sqlite:///{tmp}/study.db", k, args.window, args.seconds, Path(tmp)
                    )
                else:
                    name = f"bench_{uuid.uuid4().hex[:8]}"
                    with admin.connect() as conn:
                        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
                    try:
                        url = args.pg.rsplit("/", 1)[0] + f"/{name}"
                        with PeakConnections(admin, name) as conns:
                            rate, span = run(url, k, args.window, args.seconds, Path(tmp))
                        peak = str(conns.peak)
                    finally:
                        with admin.connect() as conn:
                            conn.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            base = base or rate
            print(
                f"{storage:<11} {k:>7} {span:>7.0f} {rate:>9.2f} {rate / base:>8.2f}x "
                f"{rate / base / k:>10.0%} {peak:>11}",
                flush=True,
            )


if __name__ == "__main__":
    main()
