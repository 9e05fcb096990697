"""The Optuna study of a config: sampler, pruner, creation, resumption and enqueued trials.

A study is created once, from a validated config; the config's identity (objectives, budget,
space, data) is stored on it, so rerunning with a changed space is refused rather than mixing
two searches in one study. Enqueued trials are added at creation only: they run once, however
often the study is resumed. So are the trials a warm start carries from earlier studies
(``search.warm_start``), once per source.

Example:
    >>> from search.config import load_config
    >>> type(make_pruner(load_config("smoke"))).__name__
    'SuccessiveHalvingPruner'
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

from search import warm_start
from search.config import StudyConfig, parse_config
from search.record import StudyRecord, attrs, write_study
from search.samplers import create_pruner, create_sampler, describe
from search.slots import ever_locked, slot_lock
from search.space import LEGACY_KEYS
from search.storage import study_exists, without_password

_IDENTITY_KEYS = ("objectives", "budget", "space", "data")


class StudyMismatch(Exception):
    """The storage already holds a study of this name, made from a different config."""


def make_sampler(config: StudyConfig, *, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The config's sampler for the study's ``worker``-th worker process (:func:`next_worker`).

    The worker's number is drawn from the storage, so that processes started together on any
    hosts never share a seed (same seed, same suggestions: Optuna's #4714), and the first
    worker samples exactly as its config says (a single-worker run repeats). The samplers and
    their settings: :mod:`search.samplers`.
    """
    return create_sampler(config.sampler, worker=worker, study=config.name)


def next_worker(storage: optuna.storages.RDBStorage, study: optuna.Study) -> int:
    """This process's number among the study's workers, counted in the storage under the
    study's lock: 0 for the first ever, then 1, 2, ... on every host."""
    with slot_lock(storage, study.study_name):
        number = StudyRecord.of(study).workers_started or 0
        write_study(study, workers_started=number + 1)
    return number


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """The config's pruner over epochs, with an explicit maximum (never "auto")."""
    return create_pruner(config.pruner)


def identity(config: StudyConfig) -> str:
    """A fingerprint of what makes two studies comparable.

    Architecture keys are hashed under their earlier names (``kernel``, ``stride``), so a
    config that now uses the spec's names keeps the fingerprint of the studies made from it.
    """
    body = {k: config.raw.get(k) for k in _IDENTITY_KEYS}
    space = body.get("space")
    if isinstance(space, dict) and isinstance(space.get("architecture"), dict):
        renamed = {key: legacy for legacy, key in LEGACY_KEYS.items()}
        arch = {renamed.get(k, k): v for k, v in space["architecture"].items()}
        body["space"] = {**space, "architecture": arch}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def open_study(
    config: StudyConfig,
    storage: optuna.storages.RDBStorage,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    create: bool = True,
) -> tuple[optuna.Study, bool]:
    """Create the study (and enqueue its trials) or load it; returns (study, created).

    Any number of processes may call this at once on a new study: creating and setting it up
    happen under the study's setup lock, and exactly one of them creates it.
    """
    if study_exists(storage, config.name):  # the usual case: nothing to create, no lock
        study = optuna.load_study(
            study_name=config.name,
            storage=storage,
            sampler=sampler or make_sampler(config),
            pruner=make_pruner(config),
        )
        record = StudyRecord.of(study)
        # Judged once set up: a study being created right now has no config stored yet (its
        # creator holds the lock below, and this process waits for it there).
        if record.identity is None and not ever_locked(storage, config.name):
            verify(study, config)  # refused: this tool locks before it creates a study
        if record.setup_complete:
            verify(study, config)
            if not warm_start.pending(config, record):
                return study, False
    elif not create:
        raise KeyError(config.name)
    # The study's one lock (claims take it too): a lock held while its holder needs another
    # connection is one more server connection pinned behind PgBouncer; one per study suffices.
    with slot_lock(storage, config.name):
        existed = study_exists(storage, config.name)
        study = optuna.create_study(
            study_name=config.name,
            storage=storage,
            sampler=sampler or make_sampler(config),
            pruner=make_pruner(config),
            directions=config.directions,
            load_if_exists=True,
        )
        if existed:
            verify(study, config)
        if StudyRecord.of(study).setup_complete:
            warm_start.carry(study, config, storage)  # a source first named after creation
            return study, False
        _set_up(study, config, storage)
    return study, True


def verify(study: optuna.Study, config: StudyConfig, *, adopt: bool = True) -> None:
    """Raise :class:`StudyMismatch` unless ``study`` is the one ``config`` makes: from a config
    with the same objectives, budget, space and data; and, to run trials in it (``adopt``),
    created by optuna-search. (Reading a plain Optuna study of the same directions is fine.)"""
    stored = StudyRecord.of(study)
    if stored.identity is None and adopt:
        raise StudyMismatch(
            f"study {config.name!r} in this storage was not created by optuna-search (no "
            "config is stored with it): give the config another name (its name: key), or "
            "use another storage (if optuna-search stopped while creating it, delete it: optuna "
            f"delete-study --study-name {config.name} --storage URL)"
        )
    directions = [d.name.lower() for d in study.directions]
    if directions != list(config.directions):
        raise StudyMismatch(
            f"study {config.name!r} in this storage has directions {directions}, the config "
            f"{list(config.directions)} (objectives {list(config.objectives)}): give the "
            "config another name (its name: key), or use another storage"
        )
    if stored.identity is not None and stored.identity != identity(config):
        raise StudyMismatch(
            f"study {config.name!r} in this storage was created from a different config "
            "(objectives, budget, space or data changed): give the config another name "
            "(its name: key), or use another storage"
        )


def _set_up(study: optuna.Study, config: StudyConfig, storage: optuna.storages.RDBStorage) -> None:
    """A new study's names, record, enqueued trials, note and warm start (idempotent: a first
    run that stopped half-way is completed by the next)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(config.objectives))
    # With its name, so that a worker on another host can run from the stored config alone.
    raw = {"name": config.name, **{k: v for k, v in shareable(config.raw).items() if k != "name"}}
    write_study(
        study,
        identity=identity(config),
        config_file=config.path.name,  # no absolute path of this machine in a shared study
        config_yaml=yaml.safe_dump(raw, sort_keys=False),
        objectives=list(config.objectives),
        max_params=config.budget.max_params,
        max_macs=config.budget.max_macs,
        trials=config.trials,
    )
    for label, params in config.enqueue:
        study.enqueue_trial(params, user_attrs=attrs(enqueued=label), skip_if_exists=True)
    from optuna_dashboard import save_note

    save_note(study, study_note(config))
    # Before setup_complete: a worker that sees a set-up study finds its warm start done.
    warm_start.carry(study, config, storage)
    write_study(study, setup_complete=True)


def study_note(config: StudyConfig) -> str:
    """The study's note in optuna-dashboard: what it searches, how, and the config itself."""
    space = config.space
    names = space.param_names()
    training = [n for n in names if n in space.training]
    objectives = ", ".join(
        f"`{o}` ({d})" for o, d in zip(config.objectives, config.directions, strict=True)
    )
    trials = f"{config.trials} trained trials" if config.trials else "no trial count"
    budget = config.budget.describe()
    sampler = describe(config.sampler.name, config.sampler.kwargs)
    pruner = describe(config.pruner.name, config.pruner.kwargs)
    enqueued = ", ".join(label for label, _ in config.enqueue) or "none"
    if config.warm_start:  # the sources' storages without their passwords
        sources = ", ".join(warm_start.label(s) for s in config.warm_start)
        enqueued += f"\n- warm-started from: {sources} (user attr `warm_start` counts each)"
    body = yaml.safe_dump(shareable(config.raw), sort_keys=False).rstrip()
    return (
        f"## {config.name}\n\n{config.description}\n\n"
        f"- objectives: {objectives}\n- budget: {budget} (over-budget configurations are "
        f"rejected before training; see the user attrs `verdict` and `reason`)\n"
        f"- {trials}; sampler `{sampler}`; pruner `{pruner}`\n"
        f"- searched: {len(names) - len(training)} architecture and {len(training)} training "
        f"parameters\n- data: {config.data.dataset}, {config.data.val_size:,} validation "
        f"images\n- enqueued first: {enqueued}\n\n"
        f"Config (`{config.path.name}`):\n\n```yaml\n{body}\n```\n"
    )


def shareable(raw: dict[str, Any]) -> dict[str, Any]:
    """A config as a study may store and show it: every storage URL (``storage:``, and a
    ``warm_start:`` source's) without its password (the study, its note and its report are
    read by everyone who reads the storage)."""
    if isinstance(raw.get("storage"), str):
        raw = {**raw, "storage": without_password(raw["storage"])}
    if isinstance(raw.get("warm_start"), list):
        raw = {**raw, "warm_start": [_source_without_password(s) for s in raw["warm_start"]]}
    return raw


def _source_without_password(source: Any) -> Any:
    if isinstance(source, dict) and isinstance(source.get("storage"), str):
        return {**source, "storage": without_password(source["storage"])}
    return source


def config_of(study: optuna.Study) -> StudyConfig | None:
    """The config a study was created from, as stored with it (None for a study optuna-search
    did not create); raises ``ConfigError`` if what is stored no longer validates."""
    raw = stored_config(study)
    if not raw:
        return None
    return parse_config(raw, path=Path(f"{study.study_name}.yaml (stored in the study)"))


def stored_config(study: optuna.Study) -> dict[str, Any]:
    """The YAML config a study was created from."""
    return yaml.safe_load(StudyRecord.of(study).config_yaml or "{}") or {}
