"""Warm start: a new study begins from what earlier studies learned, even when its space changed.

A config's ``warm_start: [{study: NAME, storage: URL}]`` (storage: the new study's own when
left out), or ``optuna-search run --warm-start NAME``, copies each earlier study's trials that
fit the new study into it as finished trials (``Study.add_trials``, with the distributions the
new space gives its own trials), so that the sampler starts from them instead of from random
trials: TPE's ``n_startup_trials`` counts them.

A trial fits when it completed in that study (trained there: not rejected, pruned, failed, or
itself carried from a third study), the configuration it trained (its recorded spec and
recipe) is one the new space samples (layer count, per-layer values, pool and training values
inside the new ranges and choices; the recipe values the new space fixes, or leaves at their
defaults, the ones it trained with), it is within the new budget, and its study measured the
new study's objectives. The rest are left out, counted by reason: one log line per source
(``warm start: 87 trials carried from study A, 13 left out (9: lr outside the new space
(float in [0.01, 0.2]); 4: ...)``), and the same counts on the study (``StudyRecord.warm_start``).
Only completed trials are carried: a pruned trial's value is a partial curve, and a rejected
one was judged against the earlier budget.

A carried trial is marked (outcome ``carried``, ``warm_start_from``, ``warm_start_trial``). It
trained in the earlier study, not in this one, so it informs the sampler only: it holds no
training slot (the trial count counts trials trained here), no configuration is reused from
it in place of training (it keeps no ``config_key``), and it is never a best trial
(``search.results.best_trials``); the report counts it apart.

Each source is carried once: when the study is created, inside its serialised set-up (any
number of workers may start at once), or, for an existing study, the first time a run names
it (under the study's lock; trials already carried are skipped). Earlier studies are only
read: their storage is opened without creating anything, and a missing study or storage is
bad input found before the new study is created (:func:`check_sources`).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from model.recipe import TrainConfig
from model.spec import ResNetSpec, SpecError, make_spec
from search import record
from search.config import StudyConfig, WarmStartSource
from search.errors import UsageError
from search.record import Outcome, StudyRecord, TrialRecord, status, write_study
from search.slots import NOT_IDENTITY, config_key
from search.space import SpaceError
from search.storage import (
    StorageError,
    as_url,
    mask,
    open_storage,
    parse_url,
    study_exists,
    without_password,
)

_log = logging.getLogger("optuna_search.warm_start")

SHOWN_REASONS = 3
"""Reasons named in the log line (all of them are stored on the study)."""


def label(source: WarmStartSource) -> str:
    """How carried trials and the study's record name a source: the study's name, and its
    storage (without a password) when it is not the new study's."""
    if source.storage is None:
        return source.study
    return f"{source.study} in {without_password(source.storage)}"


def carried_labels(record: StudyRecord) -> set[str]:
    """The sources a study has carried (its record's ``warm_start`` entries)."""
    return {str(e.get("from")) for e in record.warm_start or [] if isinstance(e, dict)}


def pending(config: StudyConfig, record: StudyRecord) -> list[WarmStartSource]:
    """The config's sources the study has yet to carry."""
    done = carried_labels(record)
    return [s for s in config.warm_start if label(s) not in done]


# --- before anything is created ------------------------------------------------------------


def check_sources(config: StudyConfig, url: str) -> None:
    """Raise :class:`UsageError` (one line naming the problem and the fix) for a source the
    study has yet to carry that cannot be read or measured other objectives. Creates nothing,
    here or in the new study's storage, so that a refused run leaves no study behind."""
    if not config.warm_start:
        return
    done = _carried_by_existing(config.name, url)
    for source in config.warm_start:
        if label(source) in done:
            continue  # carried already: the source may be gone by now
        storage, study = _open_source(source, url)
        try:
            objective_indices(study, config, source)
        finally:
            storage.engine.dispose()


def _carried_by_existing(name: str, url: str) -> set[str]:
    """The sources study ``name`` in ``url`` carried, if it exists (read-only: a database
    that is not there yet is not created)."""
    try:
        storage = open_storage(url, create=False)
    except StorageError:
        return set()  # no database yet; any other problem is the run's own open to report
    try:
        if not study_exists(storage, name):
            return set()
        return carried_labels(StudyRecord.of(optuna.load_study(study_name=name, storage=storage)))
    finally:
        storage.engine.dispose()


def _open_source(
    source: WarmStartSource, url: str | None
) -> tuple[optuna.storages.RDBStorage, optuna.Study]:
    """The source's storage (opened read-only: nothing is created) and study; bad input if
    either is missing. ``url`` is the new study's storage, for a source without its own."""
    where = f"warm start from study {source.study!r}"
    src_url = as_url(source.storage) if source.storage is not None else url
    assert src_url is not None
    try:
        parse_url(src_url)
        storage = open_storage(src_url, create=False)
    except StorageError as e:
        raise UsageError(f"{where}: {e}") from None
    if not study_exists(storage, source.study):
        storage.engine.dispose()
        raise UsageError(
            f"{where}: no study {source.study!r} in {mask(src_url)}: check the name "
            f"('optuna-search studies --storage URL' lists them)"
            + ("" if source.storage else ", or give its storage (warm_start: storage:)")
        )
    return storage, optuna.load_study(study_name=source.study, storage=storage)


def objective_indices(
    source: optuna.Study, config: StudyConfig, where: WarmStartSource
) -> list[int]:
    """Where each of the new study's objectives is among the source's values; bad input
    when the source did not measure one of them."""
    names = StudyRecord.of(source).objectives or source.metric_names or []
    missing = [o for o in config.objectives if o not in names]
    if missing:
        measured = f"measured {names}" if names else "names no objectives"
        raise UsageError(
            f"warm start from study {where.study!r}: it {measured}, not {missing[0]!r}: "
            f"warm-start from a study of the objectives {list(config.objectives)}"
        )
    indices = [names.index(o) for o in config.objectives]
    directions = [source.directions[i].name.lower() for i in indices]
    if directions != list(config.directions):
        raise UsageError(
            f"warm start from study {where.study!r}: it has directions {directions}, this "
            f"study {list(config.directions)}: warm-start from a study of the same objectives"
        )
    return indices


# --- carrying ------------------------------------------------------------------------------


@dataclass
class CarryReport:
    """What carrying one source did."""

    source: str
    carried: int = 0
    left_out: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        out = f"warm start: {self.carried} trials carried from study {self.source}"
        total = sum(self.left_out.values())
        if not total:
            return out
        reasons = self.left_out.most_common()
        shown = "; ".join(f"{n}: {reason}" for reason, n in reasons[:SHOWN_REASONS])
        more = len(reasons) - SHOWN_REASONS
        shown += f"; {more} more reasons" if more > 0 else ""
        return f"{out}, {total} left out ({shown})"

    def as_attr(self) -> dict[str, Any]:
        return {"from": self.source, "carried": self.carried, "left_out": dict(self.left_out)}


class _LeftOut(Exception):
    """A trial that does not fit the new study; the message is its reason."""


def carry(
    study: optuna.Study, config: StudyConfig, storage: optuna.storages.RDBStorage
) -> list[CarryReport]:
    """Carry the trials of every source the study has yet to carry (``storage`` is the
    study's own, for sources without a storage of their own). Call it under the study's
    lock: then no trial is carried twice, whoever calls it."""
    reports: list[CarryReport] = []
    todo = pending(config, StudyRecord.of(study))
    if not todo:
        return reports
    own = study.get_trials(deepcopy=False)
    # Trials carried by a run that stopped half-way: not added again, counted as carried.
    already = {
        (r.warm_start_from, r.warm_start_trial) for r in map(TrialRecord.of, own) if r.carried
    }
    seen = {k for k in map(_key, own) if k is not None}  # configurations already in the study
    for source in todo:
        if source.storage is None:
            if not study_exists(storage, source.study):  # gone since check_sources (or never run)
                raise UsageError(f"warm start from study {source.study!r}: no such study here")
            src = optuna.load_study(study_name=source.study, storage=storage)
            reports.append(_carry_one(study, config, source, src, already, seen))
            continue
        src_storage, src = _open_source(source, None)
        try:
            reports.append(_carry_one(study, config, source, src, already, seen))
        finally:
            src_storage.engine.dispose()
    return reports


def _carry_one(
    study: optuna.Study,
    config: StudyConfig,
    source: WarmStartSource,
    src: optuna.Study,
    already: set[tuple[str | None, int | None]],
    seen: set[str],
) -> CarryReport:
    name = label(source)
    report = CarryReport(name)
    indices = objective_indices(src, config, source)
    new: list[FrozenTrial] = []
    for trial in src.get_trials(deepcopy=False):
        if (name, trial.number) in already:
            report.carried += 1
            continue
        try:
            carried, key = _carried(trial, config, indices, name)
            if key in seen:
                raise _LeftOut("a configuration already carried or trained here")
        except _LeftOut as e:
            report.left_out[str(e)] += 1
            continue
        seen.add(key)
        report.carried += 1
        new.append(carried)
    study.add_trials(new)
    entries = StudyRecord.of(study).warm_start or []
    write_study(study, warm_start=[*entries, report.as_attr()])
    _log.info(report.line())
    return report


def _carried(
    trial: FrozenTrial, config: StudyConfig, indices: list[int], source: str
) -> tuple[FrozenTrial, str]:
    """The new study's copy of ``trial`` and its configuration's key; raises
    :class:`_LeftOut` with the reason when it does not fit."""
    r = TrialRecord.of(trial)
    if r.carried:
        raise _LeftOut("carried into that study from another: warm-start from that one")
    if trial.state is not TrialState.COMPLETE:
        raise _LeftOut(f"not completed ({status(trial).value})")
    values = [trial.values[i] for i in indices] if trial.values else []
    spec, trained = _trained_as(r)
    if len(values) != len(indices) or not all(math.isfinite(v) for v in values):
        raise _LeftOut("no finite value")
    space = config.space
    fixed = {k: v for k, v in trained.to_dict().items() if k in space.training}
    try:
        params = space.params_of(spec, fixed)
    except SpaceError as e:
        raise _LeftOut(_outside(e)) from None
    # The new space sampled with those values: the distributions its own trials get.
    replay = optuna.trial.FixedTrial(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # out-of-range values are checked below, by name
        candidate = space.sample(cast(optuna.Trial, replay))
    for param, distribution in replay.distributions.items():
        # Optuna's own membership test (steps and log scales included); private, with no
        # public twin: tests/test_warm_start.py fails loudly if a release drops it.
        if not distribution._contains(distribution.to_internal_repr(replay.params[param])):
            raise _LeftOut(f"{param} outside the new space")
    if candidate.spec is None:
        raise _LeftOut(f"not a valid architecture in the new space ({candidate.error})")
    try:
        recipe = TrainConfig(**candidate.recipe)
    except ValueError as e:
        raise _LeftOut(f"not a valid recipe in the new space ({e})") from None
    key = config_key(candidate.spec.to_dict(), recipe.to_dict())
    if key != config_key(spec.to_dict(), trained.to_dict()):
        raise _LeftOut(_difference(trained, recipe))
    verdict = config.budget.judge(candidate.spec)
    if not verdict.feasible:
        raise _LeftOut(f"over the new budget ({config.budget.describe()})")
    attrs = record.attrs(
        **record.copy_carried(r),
        outcome=Outcome.CARRIED,
        verdict=verdict.label,
        params=verdict.params,
        macs=verdict.macs,
        worker=f"warm start ({source})",
        warm_start_from=source,
        warm_start_trial=trial.number,
    )
    copy = optuna.trial.create_trial(
        state=TrialState.COMPLETE,
        values=values,
        params=replay.params,
        distributions=replay.distributions,
        user_attrs=attrs,
        intermediate_values=dict(trial.intermediate_values),
        constraints=verdict.violations,
    )
    return copy, key


def _trained_as(r: TrialRecord) -> tuple[ResNetSpec, TrainConfig]:
    """The architecture and recipe a trial recorded; raises :class:`_LeftOut` without them."""
    if r.spec is None or r.recipe is None:
        raise _LeftOut("no architecture and recipe recorded (not trained by optuna-search)")
    try:
        return make_spec(**r.spec), TrainConfig.from_dict(r.recipe)
    except (SpecError, TypeError, ValueError):
        raise _LeftOut("its recorded architecture or recipe no longer reads") from None


def _key(trial: FrozenTrial) -> str | None:
    """The configuration a completed trial of the new study stands for (None for others)."""
    if trial.state is not TrialState.COMPLETE:
        return None
    try:
        spec, recipe = _trained_as(TrialRecord.of(trial))
    except _LeftOut:
        return None
    return config_key(spec.to_dict(), recipe.to_dict())


def _outside(error: SpaceError) -> str:
    """A reason without the trial's own value, so that trials group by it."""
    text = str(error)
    found = re.search(r" is outside the space (\(.*\))$", text)
    if found:
        return f"{error.key} outside the new space {found.group(1)}"
    return f"{error.key}: {text.split(', got ')[0]}"


def _difference(trained: TrainConfig, recipe: TrainConfig) -> str:
    """The first recipe value (of those that change a result) the new space does not train
    with, without the trial's own value."""
    old, new = trained.to_dict(), recipe.to_dict()
    for name, value in new.items():
        if name not in NOT_IDENTITY and old.get(name) != value:
            return f"{name} is {value!r} in the new space, not what it trained with"
    return "its configuration is not one of the new space"
