"""What each figure and the page's header show, chosen and computed from the rows: small
dataclasses that the drawing modules turn into plotly figures and HTML (Optuna's visualization
code keeps its ``_get_*_info`` apart from its ``_get_*_plot`` the same way)."""

from __future__ import annotations

import dataclasses
import datetime
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TypedDict

import optuna
from optuna.distributions import CategoricalChoiceType

from search.config import StudyConfig
from search.record import FAILED, SKIPPED, Outcome, StudyRecord, VerdictLabel, is_number
from search.report.rows import Row, SizeKey, front_numbers, pareto_steps
from search.results import best_trials
from search.space import arch_param_order

# ---------------------------------------------------------------------------------------------
# The paper's figures: TEST accuracies of models chosen on the test set (our trials report
# validation accuracy on a held-out split), so they are reference marks, not comparable scores.


@dataclasses.dataclass(frozen=True, slots=True)
class PaperPoint:
    label: str
    params: int
    test_accuracy: float
    symbol: str
    fill: str


PAPER_POINTS = (
    PaperPoint("ResNet10", 4_903_242, 0.9466, "diamond", "white"),
    PaperPoint("ResNet26-B453, 200 epochs", 4_992_586, 0.9564, "star", "white"),
    PaperPoint("ResNet26-B453, 600 epochs", 4_992_586, 0.9595, "star", "#111827"),
)
"""The paper's reference points: (label, params, TEST accuracy, marker symbol, fill)."""


# ---------------------------------------------------------------------------------------------
# The study's own settings, as stored with it (else as the config says)


def objectives_of(study: optuna.Study, config: StudyConfig) -> list[str]:
    return StudyRecord.of(study).objectives or list(config.objectives)


def max_params_of(study: optuna.Study, config: StudyConfig) -> int | None:
    stored = StudyRecord.of(study).max_params
    return stored if stored is not None else config.budget.max_params


# ---------------------------------------------------------------------------------------------
# Figures


@dataclasses.dataclass(frozen=True)
class Trained:
    """The trained trials that have an accuracy, by outcome."""

    pruned: list[Row]
    completed: list[Row]

    @classmethod
    def of(cls, rows: Iterable[Row]) -> Trained:
        trained = [r for r in rows if r.trained and r.accuracy is not None]
        return cls(
            pruned=[r for r in trained if r.outcome is Outcome.PRUNED],
            completed=[r for r in trained if r.outcome is Outcome.COMPLETED],
        )

    def groups(self) -> list[tuple[Outcome, list[Row]]]:
        """The non-empty groups, pruned first so that completed trials are drawn over them."""
        groups = [(Outcome.PRUNED, self.pruned), (Outcome.COMPLETED, self.completed)]
        return [(outcome, rows) for outcome, rows in groups if rows]

    def __bool__(self) -> bool:
        return bool(self.pruned or self.completed)


@dataclasses.dataclass(frozen=True)
class Front:
    """A staircase through the best trials."""

    name: str
    corners: list[tuple[float, float]]
    """(size, accuracy) of each step, smallest first."""
    end: float
    """Where the last step ends: at the largest corner, or at the budget beyond it."""
    marked: list[Row]
    """The trials on a two-objective study's Pareto front, in the corners' order (circled);
    none for one objective, whose steps are the best accuracy at or below each size."""


@dataclasses.dataclass(frozen=True)
class AccuracyInfo:
    """Figure 1: accuracy against size, the front, the rejected configurations, the paper."""

    size_key: SizeKey
    multi: bool
    trained: Trained
    front: Front | None
    over: list[Row]
    """Rejected over budget, placed at their size in a strip below."""
    invalid: list[Row]
    """Rejected as invalid: no size to place them at, only counted."""
    budget: int | None
    """The parameter budget, where the x axis is the parameter count."""
    paper: tuple[PaperPoint, ...]

    @property
    def rejected_note(self) -> str:
        return (
            f"{len(self.over)} over budget at their size, "
            f"{len(self.invalid)} invalid (no size: not drawn)"
        )


def accuracy_info(
    rows: Sequence[Row],
    study: optuna.Study,
    *,
    max_params: int | None,
    size_key: SizeKey = "params",
    show_paper: bool = True,
) -> AccuracyInfo:
    """What figure 1 shows of the trials (MACs for size in a params-vs-MACs study)."""
    trained = Trained.of(r for r in rows if r.size(size_key))
    budget = max_params if size_key == "params" and max_params else None
    return AccuracyInfo(
        size_key=size_key,
        multi=len(study.directions) > 1,
        trained=trained,
        front=_front(trained.completed, study, size_key, budget),
        over=[r for r in rows if r.verdict is VerdictLabel.OVER_BUDGET and r.size(size_key)],
        invalid=[r for r in rows if r.verdict is VerdictLabel.INVALID],
        budget=budget,
        paper=PAPER_POINTS if show_paper and size_key == "params" else (),
    )


def _front(
    completed: Sequence[Row], study: optuna.Study, size_key: SizeKey, budget: int | None
) -> Front | None:
    def point(r: Row) -> tuple[float, float]:
        return r.size(size_key) or 0.0, r.accuracy or 0.0

    if len(study.directions) > 1:
        on_front = front_numbers(study)
        marked = sorted((r for r in completed if r.number in on_front), key=point)
        corners = [point(r) for r in marked]
        name = f"Pareto front (study.best_trials, {len(marked)})"
    else:
        marked = []
        corners = pareto_steps(point(r) for r in completed)
        name = "front: best accuracy at or below each size"
    if not corners:
        return None
    end = max(size for size, _ in corners)
    if budget and budget > end:
        end = float(budget)  # the best reachable under the budget, up to the line
    return Front(name, corners, end, marked)


@dataclasses.dataclass(frozen=True)
class HistoryInfo:
    """Figure 2: accuracy by trial number, and the best so far."""

    trained: Trained
    best: list[tuple[int, float]]
    """Corners of the best-so-far staircase, ending at the last trained trial (empty before a
    trial completes)."""


def history_info(rows: Sequence[Row]) -> HistoryInfo:
    trained = Trained.of(rows)
    best: list[tuple[int, float]] = []
    for r in trained.completed:
        if r.accuracy is not None and (not best or r.accuracy > best[-1][1]):
            best.append((r.number, r.accuracy))
    if best:
        last = max(r.number for r in trained.pruned + trained.completed)
        best.append((last, best[-1][1]))
    return HistoryInfo(trained, best)


MIN_COMPLETED_FOR_IMPORTANCES = 3


@dataclasses.dataclass(frozen=True)
class ImportancesInfo:
    """Figure 3: Optuna's parameter importances (PED-ANOVA; for a two-objective study, of
    reaching the Pareto front)."""

    completed: int
    importances: dict[str, float]
    """Most important first; empty where one of the reasons below applies."""
    error: Exception | None = None
    """Why the evaluator failed."""
    warning: str | None = None
    """The evaluator warned that every importance is the same."""


def importances_info(study: optuna.Study) -> ImportancesInfo:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_COMPLETED_FOR_IMPORTANCES:
        return ImportancesInfo(len(complete), {})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            importances = optuna.importance.get_param_importances(study)
    except Exception as e:  # the evaluators raise various errors on degenerate studies
        return ImportancesInfo(len(complete), {}, error=e)
    degenerate = [str(w.message) for w in caught if "will be equal" in str(w.message)]
    if degenerate:
        return ImportancesInfo(len(complete), {}, warning=degenerate[0])
    return ImportancesInfo(len(complete), importances)


class Dimension(TypedDict, total=False):
    """One axis of plotly's parallel coordinates."""

    label: str
    values: Sequence[float]
    range: Sequence[float]
    tickvals: Sequence[float]
    ticktext: Sequence[str]
    tickformat: str


@dataclasses.dataclass(frozen=True)
class ParallelInfo:
    """Figure 4: the trained trials through their architecture values."""

    trained: list[Row]
    """Pruned first, then by accuracy: the best lines are drawn on top."""
    arch_names: list[str]
    dimensions: list[Dimension] = dataclasses.field(default_factory=list)
    colour: list[float] = dataclasses.field(default_factory=list)
    """A completed trial's accuracy; a pruned one's ``cmin``, below the accuracies' scale."""
    cmin: float = 0.0
    cmax: float = 1.0
    scale_from: float = 0.0
    """Where the accuracies' colour scale begins in [cmin, cmax]; below it, pruned trials."""
    tickformat: str = ".1%"


PARALLEL_PRUNED_GAP = 0.06
"""How far below the lowest accuracy pruned trials sit on the colour scale (of its span)."""


def parallel_info(rows: Sequence[Row], study: optuna.Study) -> ParallelInfo:
    trained = [r for r in rows if r.trained and r.accuracy is not None]
    params_by_number = {t.number: t.params for t in study.get_trials(deepcopy=False)}
    names = sorted(
        {n for r in trained for n in params_by_number.get(r.number, {}) if arch_param_order(n)},
        key=lambda n: arch_param_order(n) or (0, 0),
    )
    if not trained or not names:
        return ParallelInfo(trained, names)
    trained.sort(key=lambda r: (r.outcome is Outcome.COMPLETED, r.accuracy or 0.0))
    columns = {n: [params_by_number[r.number].get(n) for r in trained] for n in names}
    # A value every trained trial shares tells nothing: leave its axis out (unless it is alone).
    varying = [n for n in names if len({repr(v) for v in columns[n]}) > 1] or names
    dims = [_dimension(n, columns[n]) for n in varying]
    completed = [
        r.accuracy for r in trained if r.outcome is Outcome.COMPLETED and r.accuracy is not None
    ]
    lo, hi = (min(completed), max(completed)) if completed else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1e-3
    if all(r.outcome is Outcome.COMPLETED for r in trained):
        grey, scale_from = lo, 0.0
    else:
        grey = lo - (hi - lo) * PARALLEL_PRUNED_GAP
        scale_from = (lo - grey) / (hi - grey)
    if all(r.params for r in trained):
        values = [(r.params or 0) / 1e6 for r in trained]
        dims.append({"label": "params (M)", "values": values, "tickformat": ".2~f"})
    tickformat = ".2%" if hi - lo < 0.01 else ".1%"  # close accuracies need the second decimal
    accuracies = [r.accuracy or 0.0 for r in trained]
    dims.append({"label": "val accuracy", "values": accuracies, "tickformat": tickformat})
    return ParallelInfo(
        trained=trained,
        arch_names=names,
        dimensions=dims,
        colour=[(r.accuracy or 0.0) if r.outcome is Outcome.COMPLETED else grey for r in trained],
        cmin=grey,
        cmax=hi,
        scale_from=scale_from,
        tickformat=tickformat,
    )


def _dimension(name: str, values: Sequence[CategoricalChoiceType]) -> Dimension:
    """A parcoords axis: numbers stay numbers; anything else (``global``) is a category, and
    a missing value (a layer the trial lacks) sits below the rest as 'n/a'."""
    present = [v for v in values if v is not None]
    numbers = [v for v in present if is_number(v)]
    if present and len(numbers) == len(present) and len(set(numbers)) > 8:
        lo, hi = min(numbers), max(numbers)
        if len(present) == len(values):
            return {"label": name, "values": numbers, "range": [lo, hi]}
        na = lo - max((hi - lo) * 0.12, 1)
        ticks = [lo + (hi - lo) * i / 4 for i in range(5)]
        return {
            "label": name,
            "values": [v if is_number(v) else na for v in values],
            "range": [na, hi],
            "tickvals": [na, *ticks],
            "ticktext": ["n/a", *(f"{t:g}" for t in ticks)],
        }
    # Few values (or categories): one evenly spaced tick per value, in natural order.
    order = sorted(set(present), key=lambda v: (0, v, "") if is_number(v) else (1, 0, str(v)))
    index = {v: i for i, v in enumerate(order)}
    has_na = len(present) < len(values)
    low = -1 if has_na else 0
    return {
        "label": name,
        "values": [index[v] if v is not None else -1 for v in values],
        "range": [low, max(len(order) - 1, low + 1)],
        "tickvals": ([-1] if has_na else []) + list(range(len(order))),
        "ticktext": (["n/a"] if has_na else []) + [str(v) for v in order],
    }


@dataclasses.dataclass(frozen=True)
class Bar:
    """A trial's time on its worker."""

    row: Row
    start: datetime.datetime
    end: datetime.datetime
    """Now, for a trial still running."""


@dataclasses.dataclass(frozen=True)
class TimelineInfo:
    """Figure 6: when each trial ran, one row per worker."""

    workers: list[str]
    bars: dict[Outcome, list[Bar]]
    """By outcome, in the order the outcomes first appear."""


def timeline_info(rows: Sequence[Row], *, now: datetime.datetime) -> TimelineInfo:
    bars: dict[Outcome, list[Bar]] = {}
    for r in rows:
        if r.start is not None:
            bars.setdefault(r.outcome, []).append(Bar(r, r.start, r.end or now))
    workers = sorted({b.row.worker for group in bars.values() for b in group})
    return TimelineInfo(workers, bars)


# ---------------------------------------------------------------------------------------------
# The page's header and best-trial card


@dataclasses.dataclass(frozen=True)
class HeaderInfo:
    """What the study is and what its trials did."""

    objectives: list[tuple[str, str]]
    """(name, direction) of each objective."""
    max_params: int | None
    max_macs: int | None
    to_train: int | None
    first_start: datetime.datetime | None
    last_end: datetime.datetime | None
    """The last trial's end, or now while one runs and none has ended."""
    workers: int
    devices: list[str]
    counts: list[tuple[str, int]]
    dry_run: bool
    any_trained: bool
    trials: int
    """How many trials the study holds, of any kind."""


def header_info(
    study: optuna.Study, config: StudyConfig, rows: Sequence[Row], *, now: datetime.datetime
) -> HeaderInfo:
    record = StudyRecord.of(study)
    names = record.objectives or study.metric_names or list(config.objectives)
    directions = [d.name.lower() for d in study.directions]
    starts = [r.start for r in rows if r.start]
    ends = [r.end for r in rows if r.end]
    return HeaderInfo(
        objectives=list(zip(names, directions, strict=False)),
        max_params=max_params_of(study, config),
        max_macs=record.max_macs if record.max_macs is not None else config.budget.max_macs,
        to_train=record.trials if record.trials is not None else config.trials,
        first_start=min(starts) if starts else None,
        last_end=(max(ends) if ends else now) if starts else None,
        workers=len({r.worker for r in rows if r.start}),
        devices=sorted({r.record.device for r in rows if r.record.device}),
        counts=_counts(rows),
        dry_run=any(r.record.dry_run for r in rows),
        any_trained=any(r.trained for r in rows),
        trials=len(rows),
    )


def _counts(rows: Sequence[Row]) -> list[tuple[str, int]]:
    """The header's tiles: what the trials did (the last three only where there are any)."""
    c = Counter(r.outcome for r in rows)
    verdicts = Counter(r.verdict for r in rows if r.outcome is Outcome.REJECTED)
    items = [
        ("trained", c[Outcome.COMPLETED] + c[Outcome.PRUNED]),
        ("completed", c[Outcome.COMPLETED]),
        ("pruned", c[Outcome.PRUNED]),
        ("rejected over budget", verdicts[VerdictLabel.OVER_BUDGET]),
        ("invalid", verdicts[VerdictLabel.INVALID]),
        ("reused", c[Outcome.REUSED]),
        ("failed", sum(c[o] for o in FAILED)),
    ]
    extra = [
        ("running", c[Outcome.RUNNING]),
        ("waiting", c[Outcome.WAITING]),
        ("skipped (duplicate/surplus)", sum(c[o] for o in SKIPPED)),
        ("carried by a warm start (not trained here)", c[Outcome.CARRIED]),
    ]
    return items + [(k, v) for k, v in extra if v]


@dataclasses.dataclass(frozen=True)
class BestInfo:
    """The best trial, or a two-objective study's Pareto set, most accurate first."""

    trials: list[Row]

    @property
    def smallest(self) -> Row:
        return min(self.trials, key=lambda r: r.params or 0)


def best_info(study: optuna.Study, rows: Sequence[Row]) -> BestInfo:
    by_number = {r.number: r for r in rows}
    return BestInfo([by_number[t.number] for t in best_trials(study) if t.number in by_number])
