"""The search service's own costs, with a cheap stand-in for training.

Everything but training is the real code path: the study's space is sampled through Optuna,
the budget is checked, the verdict recorded (constraints and user attrs) in a real storage,
and the trial told. Training is replaced by a stand-in score that, like real accuracy,
grows with model size and depends on the learning rate, so a good sampler is pulled towards
the budget's edge: the hardest place to avoid over-budget suggestions.

1. Over-budget share of the suggestions in trials 50-300 of b453-space: random sampler
   against the default sampler (TPE, multivariate, grouped, constraint-aware).
2. What one rejected configuration costs, ask to tell, storage included (SQLite).
3. Cost per trial (ask, budget check, tell) as the study grows: 100, 1,000, 5,000 trials,
   on SQLite and PostgreSQL.

Run: python benchmarks/bench_search.py [--part 1,2,3] [--pg URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import sqlalchemy

from model.accounting import count_params
from model.recipe import TrainConfig
from model.spec import ResNetSpec
from model.training import EpochRecord, TrainResult
from search import record, slots
from search.config import StudyConfig, load_config
from search.objective import Objective
from search.record import TrialRecord, VerdictLabel
from search.storage import open_storage
from search.study import make_sampler, open_study
from search.trainer import EpochCallback

if TYPE_CHECKING:
    from model.data import DataSplits

optuna.logging.set_verbosity(optuna.logging.ERROR)


class StandIn:
    """A :class:`search.trainer.Trainer` that trains nothing: an instant, deterministic score.

    Its result holds the last epoch only, and it reports no epoch to the objective (no
    per-epoch records, nothing for the pruner): a feasible trial costs the service one
    sample, verdict, record and tell, which is what this benchmark measures.
    """

    dry_run = True
    checkpoint_suffix = ".standin"

    def train(
        self,
        spec: ResNetSpec,
        data: DataSplits | None,
        config: TrainConfig,
        *,
        device: str = "cpu",
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> TrainResult:
        params = count_params(spec)
        key = slots.config_key(spec.to_dict(), config.to_dict())  # the trial's config_key
        noise = random.Random(key).gauss(0, 0.003)
        score = (
            0.80
            + 0.03 * math.log10(params / 1e5)
            + 0.02 * min(spec.depth, 30) / 30
            - 0.02 * abs(math.log(config.lr / 0.1))
            + noise
        )
        last = EpochRecord(
            epoch=config.epochs,
            train_loss=0.0,
            val_accuracy=score,
            lr=config.lr,
            seconds=0.0,
            images_per_second=0.0,
            eval_seconds=0.0,
        )
        return TrainResult(
            spec=spec,
            config=config,
            history=[last],
            params=params,
            device=self.device_name(device),
            seconds=0.0,
        )

    def checkpointed(self, path: Path) -> list[EpochRecord]:
        return []

    def device_name(self, device: str) -> str:
        return f"stand-in ({device})"

    def framework_version(self) -> str | None:
        return None


class Unlimited(Objective):
    """The real objective, but a trial takes its training slot without the slot lock or the
    study's trial count, so that a study grows to any size."""

    def _claim(self, trial: optuna.Trial, key: str) -> int | None:
        finished = slots.find_configuration(self.storage, trial.study._study_id, key, "COMPLETE")
        if finished is None:
            record.write(trial, counted=True)
        return finished


def run_trials(
    config: StudyConfig,
    url: str,
    sampler: optuna.samplers.BaseSampler,
    n: int,
) -> list[tuple[VerdictLabel | None, float]]:
    """Run ``n`` trials; returns (verdict, seconds from ask to tell) per trial."""
    storage = open_storage(url)
    study, _ = open_study(config, storage, sampler=sampler)
    objective = Unlimited(
        config=config,
        storage=storage,
        trainer=StandIn(),
        device="cpu",
        checkpoint_dir=Path("unused"),
        load_data=lambda: None,
        log=lambda line: None,
    )
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        try:
            value = objective(trial)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        seconds = time.perf_counter() - t0  # before reading the verdict back, which is not timed
        out.append((TrialRecord.of(storage.get_trial(trial._trial_id)).verdict, seconds))
    return out


def part1_and_2(config: StudyConfig, seeds: list[int], workdir: Path) -> None:
    print("\n1. over-budget share of trials 50-300 on b453-space (SQLite)")
    print(
        f"{'sampler':<10} {'seed':>4} {'over budget':>12} {'invalid':>8} {'rejected':>9} "
        f"{'reject ms (median)':>19}"
    )
    shares: dict[str, list[float]] = {"random": [], "default": []}
    reject_ms: dict[str, list[float]] = {"random": [], "default": []}
    for seed in seeds:
        for name in ("random", "default"):
            seeded = dataclasses.replace(
                config, sampler=dataclasses.replace(config.sampler, seed=seed)
            )
            sampler = (
                optuna.samplers.RandomSampler(seed=seed)
                if name == "random"
                else make_sampler(seeded)
            )
            url = f"sqlite:///{workdir / f'{name}-{seed}.db'}"
            trials = run_trials(config, url, sampler, 300)[50:]
            over = sum(v is VerdictLabel.OVER_BUDGET for v, _ in trials) / len(trials)
            invalid = sum(v is VerdictLabel.INVALID for v, _ in trials) / len(trials)
            ms = [s * 1e3 for v, s in trials if v is not VerdictLabel.FEASIBLE]
            shares[name].append(over)
            reject_ms[name].extend(ms)
            print(
                f"{name:<10} {seed:>4} {over:>12.1%} {invalid:>8.1%} {over + invalid:>9.1%} "
                f"{statistics.median(ms):>19.1f}"
            )
    r, d = statistics.mean(shares["random"]), statistics.mean(shares["default"])
    print(f"mean over-budget share: random {r:.1%}, default {d:.1%} (ratio {d / r:.2f})")
    print(
        "\n2. cost of one rejected configuration, ask to tell, SQLite: median "
        f"{statistics.median(reject_ms['random']):.1f} ms with the random sampler, "
        f"{statistics.median(reject_ms['default']):.1f} ms with the default sampler "
        "(trials 50-300)"
    )


def _fill(config: StudyConfig, url: str, template: list[optuna.trial.FrozenTrial], n: int) -> None:
    """Grow the study to ``n`` finished trials by adding copies of real ones (fast)."""
    study = optuna.load_study(study_name=config.name, storage=url)
    have = len(study.trials)
    batch = []
    for i in range(have, n):
        t = template[i % len(template)]
        batch.append(
            optuna.trial.create_trial(
                state=t.state,
                values=t.values,
                params=t.params,
                distributions=t.distributions,
                user_attrs=t.user_attrs,
                intermediate_values=t.intermediate_values,
                constraints=t.constraints or None,
            )
        )
    study.add_trials(batch)


def part3(config: StudyConfig, urls: dict[str, str], sizes: list[int], probe: int) -> None:
    print(
        f"\n3. service cost per trial (ask, budget check, record, tell) as the study grows; "
        f"median of {probe} trials at each size, default sampler"
    )
    print(f"{'storage':<11}" + "".join(f"{s:>10,}" for s in sizes) + "   (trials in the study)")
    for name, url in urls.items():
        template = None
        row = []
        for size in sizes:
            if template is None:
                run_trials(config, url, make_sampler(config), size)
                template = optuna.load_study(study_name=config.name, storage=url).trials
            else:
                _fill(config, url, template, size)
            times = [s for _, s in run_trials(config, url, make_sampler(config), probe)]
            row.append(statistics.median(times) * 1e3)
        print(f"{name:<11}" + "".join(f"{ms:>8.1f}ms" for ms in row))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--part", default="1,2,3")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--sizes", default="100,1000,5000")
    p.add_argument("--probe", type=int, default=30, help="trials timed at each size")
    p.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="an admin URL: a scratch database is created and dropped",
    )
    args = p.parse_args()
    config = dataclasses.replace(load_config("b453-space"), enqueue=())
    print(
        f"machine: {platform.machine()}, {platform.python_version()}, optuna "
        f"{optuna.__version__}, {date.today()}"
    )
    parts = args.part.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        if "1" in parts or "2" in parts:
            part1_and_2(config, [int(s) for s in args.seeds.split(",")], Path(tmp))
        if "3" in parts:
            scratch = f"bench_{uuid.uuid4().hex[:8]}"
            admin = sqlalchemy.create_engine(args.pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{scratch}"'))
            try:
                urls = {
                    "SQLite": f"sqlite:///{Path(tmp) / 'grow.db'}",
                    "PostgreSQL": args.pg.rsplit("/", 1)[0] + f"/{scratch}",
                }
                part3(config, urls, [int(s) for s in args.sizes.split(",")], args.probe)
            finally:
                with admin.connect() as conn:
                    conn.execute(sqlalchemy.text(f'DROP DATABASE "{scratch}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
