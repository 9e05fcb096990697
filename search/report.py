"""A study as one self-contained HTML report (plotly.js inline, works offline), or PNGs.

The report has a header (study, objectives, budget, what the trials did, the best so far),
six figures, each with a line saying how to read it, and a table of the top trials with the
command that retrains each:

1. validation accuracy against parameter count, with the budget, the front (best accuracy at
   or below each size), the rejected configurations in a strip below, and the paper's points;
2. the optimisation history; 3. parameter importances (PED-ANOVA); 4. parallel coordinates of
   the architecture parameters; 5. learning curves of the top trials; 6. a timeline of trials
   per worker; 7. the top-trials table.

``optuna-search report --study NAME -o report.html`` calls :func:`write_report`.

Example:
    >>> pareto_steps([(30, 0.7), (10, 0.5), (20, 0.4), (40, 0.7)])
    [(10, 0.5), (30, 0.7)]
    >>> import tempfile, optuna
    >>> from search.config import load_config
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study(study_name="smoke", direction="maximize")
    >>> [path] = write_report(study, load_config("smoke"), tempfile.mkdtemp() + "/r.html")
    >>> "No trial has trained yet" in path.read_text()
    True
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from search.cli import UsageError
from search.config import StudyConfig
from search.results import best_trials, train_command
from search.space import ARCH_KEYS

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

COLOURS = {
    "completed": "#2563eb",
    "pruned": "#a3a9b3",
    "reused": "#7c3aed",
    "over_budget": "#dc2626",
    "invalid": "#f59e0b",
    "rejected": "#dc2626",
    "diverged": "#111827",
    "out_of_memory": "#111827",
    "failed": "#111827",
    "interrupted": "#c2410c",
    "running": "#10b981",
    "duplicate": "#d1d5db",
    "surplus": "#d1d5db",
    "front": "#ea580c",
    "paper": "#111827",
}
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_TRAINED = ("completed", "pruned")
_PARCOORDS_FIT = 16
"""Parallel-coordinate axes that fit the page's width; more make the figure scroll."""
_PARCOORDS_AXIS_PX = 64
_FAILED = ("failed", "diverged", "out_of_memory", "interrupted")


# ---------------------------------------------------------------------------------------------
# What each trial did, read once from the study


@dataclasses.dataclass(frozen=True)
class Row:
    """One trial, as the report sees it."""

    number: int
    state: str
    """Optuna's state name: COMPLETE, PRUNED, FAIL, RUNNING or WAITING."""
    outcome: str
    """The objective's ``outcome`` (completed, pruned, rejected, reused, ...), else derived
    from the state (running, waiting, failed)."""
    verdict: str | None
    arch: str
    params: int | None
    macs: int | None
    accuracy: float | None
    """Validation accuracy: the final one, or a pruned trial's last reported one."""
    epochs: int | None
    curve: list[float]
    worker: str
    start: datetime.datetime | None
    end: datetime.datetime | None
    values: list[float] | None
    attrs: Mapping[str, Any]

    @property
    def trained(self) -> bool:
        return self.outcome in _TRAINED


def read_rows(study: optuna.Study) -> list[Row]:
    """Every trial of the study as a :class:`Row`, in trial-number order."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        state = t.state.name
        if state in ("RUNNING", "WAITING"):
            outcome = state.lower()
        elif state == "FAIL":
            outcome = "interrupted" if attrs.get("outcome") == "interrupted" else "failed"
        else:
            outcome = attrs.get("outcome") or ("completed" if state == "COMPLETE" else "pruned")
        curve = [float(v) for v in attrs.get("curve") or [] if _is_number(v)]
        values = list(t.values) if t.values is not None else None
        if state == "COMPLETE" and values:
            accuracy: float | None = float(values[0])
        elif curve:
            accuracy = curve[-1]
        elif t.intermediate_values:
            accuracy = float(t.intermediate_values[max(t.intermediate_values)])
        else:
            accuracy = float(values[0]) if values and _is_number(values[0]) else None
        epochs = attrs.get("epochs_trained", len(curve) or None)
        rows.append(
            Row(
                number=t.number,
                state=state,
                outcome=str(outcome),
                verdict=attrs.get("verdict"),
                arch=str(attrs.get("arch") or "?"),
                params=attrs.get("params"),
                macs=attrs.get("macs"),
                accuracy=accuracy,
                epochs=epochs,
                curve=curve,
                worker=str(attrs.get("worker") or attrs.get("host") or "unknown"),
                start=t.datetime_start,
                end=t.datetime_complete,
                values=values,
                attrs=attrs,
            )
        )
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pareto_steps(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (size, accuracy) points that beat every smaller one: the best accuracy at or below
    each size, as the corners of a step line."""
    front: list[tuple[float, float]] = []
    for size, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((size, accuracy))
    return front


def rank_top(rows: Sequence[Row], study: optuna.Study, n: int) -> list[Row]:
    """The top ``n`` trained trials: completed ones by accuracy (a two-objective study's
    Pareto set first), then pruned ones, longest-trained and most accurate first."""
    front = {t.number for t in best_trials(study)} if len(study.directions) > 1 else set()
    completed = [r for r in rows if r.outcome == "completed" and r.accuracy is not None]
    completed.sort(key=lambda r: (r.number not in front, -(r.accuracy or 0.0), r.number))
    pruned = [r for r in rows if r.outcome == "pruned" and r.accuracy is not None]
    pruned.sort(key=lambda r: (-(r.epochs or 0), -(r.accuracy or 0.0), r.number))
    return (completed + pruned)[: max(n, 0)]


# ---------------------------------------------------------------------------------------------
# Figures: each is a Figure, or a note (a string) saying why there is none


@dataclasses.dataclass
class Section:
    slug: str
    """Used for the div id (``fig-SLUG``) and the PNG name (``NN-SLUG.png``)."""
    title: str
    caption: str
    figure: go.Figure | None = None
    note: str | None = None
    body_html: str | None = None
    """HTML in place of a figure (the table)."""


def _layout(fig: go.Figure, *, height: int, **extra: Any) -> go.Figure:
    """The report's common look; ``extra`` layout keys are merged over it."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        font={"family": _FONT, "size": 13, "color": "#1f2937"},
        margin={"l": 70, "r": 30, "t": 30, "b": 55},
        hoverlabel={"font": {"family": _FONT}},
        legend={"bgcolor": "rgba(255,255,255,0.85)"},
    )
    fig.update_layout(**extra)
    return fig


def _hover(rows: Sequence[Row]) -> tuple[list[list[Any]], str]:
    data = [
        [
            r.number,
            html.escape(r.arch),
            f"{r.params:,}" if r.params is not None else "-",
            f"{r.accuracy:.2%}" if r.accuracy is not None else "-",
            r.epochs if r.epochs is not None else "-",
            r.outcome,
            f"{r.macs / 1e6:,.1f} M" if r.macs is not None else "-",
        ]
        for r in rows
    ]
    template = (
        "<b>trial %{customdata[0]}</b> (%{customdata[5]})<br>%{customdata[1]}<br>"
        "params %{customdata[2]}, MACs %{customdata[6]}<br>"
        "val accuracy %{customdata[3]} after %{customdata[4]} epochs<extra></extra>"
    )
    return data, template


def _steps(xs: Sequence[float], ys: Sequence[float], name: str) -> go.Scatter:
    """A staircase in the front's colour: the Pareto front, or the best accuracy so far."""
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"shape": "hv", "color": COLOURS["front"], "width": 2},
        name=name,
        hoverinfo="skip",
    )


def _size(row: Row, key: str) -> float | None:
    value = row.params if key == "params" else row.macs
    return float(value) if _is_number(value) and value > 0 else None


def figure_accuracy_vs_size(
    rows: Sequence[Row],
    study: optuna.Study,
    *,
    max_params: int | None,
    size_key: str = "params",
    show_paper: bool = True,
) -> Section:
    """Figure 1: accuracy against parameter count (MACs for a params-vs-MACs study)."""
    multi = len(study.directions) > 1
    title = "Accuracy against parameter count" if size_key == "params" else "Accuracy against MACs"
    section = Section("accuracy-vs-params", title, "")
    trained = [r for r in rows if r.trained and r.accuracy is not None and _size(r, size_key)]
    over = [r for r in rows if r.verdict == "over_budget" and _size(r, size_key)]
    invalid = [r for r in rows if r.verdict == "invalid"]
    rejected_note = (
        f"{len(over)} over budget at their size, {len(invalid)} invalid (no size: not drawn)"
    )
    if not trained and not over:
        section.note = f"No trial has trained yet; rejected configurations: {rejected_note}."
        return section

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.84, 0.16], vertical_spacing=0.03
    )
    for outcome in ("pruned", "completed"):
        group = [r for r in trained if r.outcome == outcome]
        if not group:
            continue
        data, template = _hover(group)
        fig.add_trace(
            go.Scatter(
                x=[_size(r, size_key) for r in group],
                y=[r.accuracy for r in group],
                mode="markers",
                name=f"{outcome} ({len(group)})"
                + (", at last reported accuracy" if outcome == "pruned" else ""),
                marker={
                    "color": COLOURS[outcome],
                    "size": 8 if outcome == "completed" else 6,
                    "opacity": 0.9 if outcome == "completed" else 0.55,
                    "line": {"width": 0.5, "color": "white"},
                },
                customdata=data,
                hovertemplate=template,
            ),
            row=1,
            col=1,
        )
    completed = [r for r in trained if r.outcome == "completed"]
    if multi:
        on_front = {t.number for t in best_trials(study)}
        front_rows = sorted(
            (r for r in completed if r.number in on_front),
            key=lambda r: _size(r, size_key) or 0,
        )
        corners = [(_size(r, size_key) or 0.0, r.accuracy or 0.0) for r in front_rows]
        front_name = f"Pareto front (study.best_trials, {len(front_rows)})"
    else:
        corners = pareto_steps((_size(r, size_key) or 0.0, r.accuracy or 0.0) for r in completed)
        front_name = "front: best accuracy at or below each size"
    if corners:
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        right = max(xs)
        if size_key == "params" and max_params and max_params > right:
            right = float(max_params)  # the best reachable under the budget, up to the line
        xs.append(right)
        ys.append(ys[-1])
        fig.add_trace(_steps(xs, ys, front_name), row=1, col=1)
        if multi:
            data, template = _hover(front_rows)
            fig.add_trace(
                go.Scatter(
                    x=xs[:-1],
                    y=ys[:-1],
                    mode="markers",
                    marker={
                        "color": COLOURS["front"],
                        "size": 11,
                        "symbol": "circle-open",
                        "line": {"width": 2},
                    },
                    name="on the Pareto front",
                    showlegend=False,
                    customdata=data,
                    hovertemplate=template,
                ),
                row=1,
                col=1,
            )
    if show_paper and size_key == "params":
        for p in PAPER_POINTS:
            fig.add_trace(
                go.Scatter(
                    x=[p.params],
                    y=[p.test_accuracy],
                    mode="markers",
                    name=f"{p.label}: {p.test_accuracy:.2%}",
                    legendgroup="paper",
                    legendgrouptitle={"text": "paper: TEST accuracy, selected on the test set"},
                    marker={
                        "symbol": p.symbol,
                        "size": 13,
                        "color": p.fill,
                        "line": {"width": 1.8, "color": COLOURS["paper"]},
                    },
                    hovertemplate=(
                        f"<b>paper: {p.label}</b><br>{p.params:,} params<br>"
                        f"TEST accuracy {p.test_accuracy:.2%} (selected on the test set; "
                        "ours are validation accuracies)<extra></extra>"
                    ),
                ),
                row=1,
                col=1,
            )
    if over:
        data, template = _hover(over)
        # Spread the strip vertically a little so that equal sizes do not hide each other.
        jitter = [((r.number * 7919) % 11 - 5) / 14 for r in over]
        fig.add_trace(
            go.Scatter(
                x=[_size(r, size_key) for r in over],
                y=jitter,
                mode="markers",
                name=f"rejected over budget ({len(over)})",
                marker={"color": COLOURS["over_budget"], "symbol": "line-ns-open", "size": 14},
                customdata=[
                    [*d, html.escape(str(r.attrs.get("reason", "")))]
                    for d, r in zip(data, over, strict=True)
                ],
                hovertemplate=(
                    "<b>trial %{customdata[0]}</b>: rejected<br>%{customdata[1]}<br>"
                    "params %{customdata[2]}<br>%{customdata[7]}<extra></extra>"
                ),
            ),
            row=2,
            col=1,
        )
    if invalid:  # no size to place them at: a legend entry with the count instead
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=f"rejected invalid ({len(invalid)}, no parameter count)",
                marker={"color": COLOURS["invalid"], "symbol": "x-thin-open", "size": 10},
            ),
            row=2,
            col=1,
        )
    if size_key == "params" and max_params:
        fig.add_vline(
            x=max_params,
            line={"color": COLOURS["over_budget"], "dash": "dash", "width": 1.5},
            row="all",
            col=1,
        )
        fig.add_annotation(
            x=math.log10(max_params),
            xref="x",
            y=1.0,
            yref="y domain",
            text=f"budget {max_params:,}",
            showarrow=False,
            xanchor="right",
            yanchor="top",
            font={"color": COLOURS["over_budget"], "size": 12},
            xshift=-4,
        )
    axis_title = "parameters (log scale)" if size_key == "params" else "MACs (log scale)"
    fig.update_xaxes(type="log", row=1, col=1, showticklabels=False)
    fig.update_xaxes(type="log", title_text=axis_title, row=2, col=1)
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1~%", row=1, col=1)
    fig.update_yaxes(
        tickvals=[0],
        ticktext=["rejected"],
        range=[-0.6, 0.6],
        zeroline=False,
        showgrid=False,
        row=2,
        col=1,
    )
    _layout(fig, height=640, legend={"x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"})
    section.figure = fig
    front_text = (
        "orange circles and steps: the Pareto front (no trial is both more accurate and smaller)"
        if multi
        else "grey: pruned, at their last (earlier) accuracy; orange steps: the best accuracy at "
        "or below each size"
    )
    what = (
        f"Blue: completed trials; {front_text}; "
        + ("dashed: the budget; " if max_params and size_key == "params" else "")
        + f"strip below: rejected configurations, {rejected_note}."
    )
    if show_paper and size_key == "params":
        what += (
            " Diamond and stars: the paper's TEST accuracies (selected on the test set), not "
            "comparable with our validation accuracies."
        )
    section.caption = what
    return section


def figure_history(rows: Sequence[Row], *, objective: str) -> Section:
    """Figure 2: each trained trial's accuracy by trial number, and the best so far."""
    section = Section(
        "history",
        "Optimisation history",
        f"Each trained trial's {objective} by trial number (grey: pruned early); the orange "
        "line is the best completed so far; missing numbers are rejected configurations.",
    )
    trained = [r for r in rows if r.trained and r.accuracy is not None]
    if not trained:
        section.note = "No trial has trained yet."
        return section
    fig = go.Figure()
    for outcome in ("pruned", "completed"):
        group = [r for r in trained if r.outcome == outcome]
        if group:
            data, template = _hover(group)
            fig.add_trace(
                go.Scatter(
                    x=[r.number for r in group],
                    y=[r.accuracy for r in group],
                    mode="markers",
                    name=f"{outcome} ({len(group)})",
                    marker={
                        "color": COLOURS[outcome],
                        "size": 8 if outcome == "completed" else 6,
                        "opacity": 0.9 if outcome == "completed" else 0.6,
                    },
                    customdata=data,
                    hovertemplate=template,
                )
            )
    best: list[tuple[int, float]] = []
    for r in trained:
        if (
            r.outcome == "completed"
            and r.accuracy is not None
            and (not best or r.accuracy > best[-1][1])
        ):
            best.append((r.number, r.accuracy))
    if best:
        last = max(r.number for r in trained)
        xs = [b[0] for b in best] + [last]
        ys = [b[1] for b in best] + [best[-1][1]]
        fig.add_trace(_steps(xs, ys, "best so far"))
    fig.update_xaxes(title_text="trial number")
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1~%")
    _layout(
        fig,
        height=420,
        legend={"orientation": "h", "x": 0.0, "y": 1.02, "yanchor": "bottom"},
        margin={"t": 40},
    )
    section.figure = fig
    return section


def figure_importances(study: optuna.Study, *, multi: bool) -> Section:
    """Figure 3: parameter importances of the completed trials (Optuna's default, PED-ANOVA)."""
    target = "reaching the Pareto front" if multi else "reaching the top validation accuracies"
    section = Section(
        "importances",
        "Parameter importances",
        f"How much each parameter matters for {target} (Optuna's PED-ANOVA over the completed "
        "trials; longer is more); blue: architecture, green: training recipe.",
    )
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 3:
        section.note = (
            f"Too few completed trials ({len(complete)}) to estimate parameter importances; "
            "they appear once a few trials have completed."
        )
        return section
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            importances = optuna.importance.get_param_importances(study)
    except Exception as e:  # the evaluators raise various errors on degenerate studies
        section.note = f"Parameter importances could not be computed: {_first_line(e)}"
        return section
    degenerate = [str(w.message) for w in caught if "will be equal" in str(w.message)]
    if degenerate or not importances:
        section.note = (
            f"Parameter importances are not informative yet ({len(complete)} completed trials): "
            + (degenerate[0] if degenerate else "no parameter varies.")
        )
        return section
    names = list(importances)[::-1]  # most important on top
    values = [importances[n] for n in names]
    colours = [COLOURS["completed"] if _arch_key(n) is not None else "#059669" for n in names]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker={"color": colours},
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
            text=[f"{v:.2f}" if v >= 0.005 else "" for v in values],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_xaxes(title_text="importance (sums to 1)", rangemode="tozero")
    _layout(fig, height=max(260, 60 + 22 * len(names)), margin={"l": 150, "r": 50, "t": 20})
    section.figure = fig
    return section


def _arch_key(name: str) -> tuple[int, int] | None:
    """Sort key of an architecture parameter (by kind, then layer); None for the recipe."""
    base, _, layer = name.rpartition("_") if re.search(r"_\d+$", name) else (name, "", "0")
    return (ARCH_KEYS.index(base), int(layer)) if base in ARCH_KEYS else None


def figure_parallel(rows: Sequence[Row], study: optuna.Study) -> Section:
    """Figure 4: the architecture parameters of the trained trials, coloured by accuracy."""
    section = Section(
        "parallel-coordinates",
        "Architecture parameters (parallel coordinates)",
        "One line per trained trial through its architecture values, coloured by validation "
        "accuracy (grey: pruned early); n/a: a layer the trial lacks; drag on an axis to filter.",
    )
    trained = [r for r in rows if r.trained and r.accuracy is not None]
    params_by_number = {t.number: t.params for t in study.get_trials(deepcopy=False)}
    names = sorted(
        {n for r in trained for n in params_by_number.get(r.number, {}) if _arch_key(n)},
        key=lambda n: _arch_key(n) or (0, 0),
    )
    if not trained or not names:
        section.note = (
            "No trial has trained yet."
            if not trained
            else "The study searches no architecture parameter."
        )
        return section
    trained.sort(key=lambda r: (r.outcome == "completed", r.accuracy or 0.0))  # pruned first
    columns = {n: [params_by_number[r.number].get(n) for r in trained] for n in names}
    # A value every trained trial shares tells nothing: leave its axis out (unless it is alone).
    varying = [n for n in names if len({repr(v) for v in columns[n]}) > 1] or names
    dims = [_dimension(n, columns[n]) for n in varying]
    completed = [r.accuracy for r in trained if r.outcome == "completed" and r.accuracy is not None]
    if completed:
        lo, hi = min(completed), max(completed)
    else:
        lo, hi = 0.0, 1.0
    hi = hi if hi > lo else lo + 1e-3
    viridis = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]
    if all(r.outcome == "completed" for r in trained):
        grey, cut, scale = lo, 0.0, []
    else:  # pruned lines get a value below the scale, drawn grey
        grey = lo - (hi - lo) * 0.06
        cut = (lo - grey) / (hi - grey)
        scale = [[0.0, "#c7ccd4"], [cut / 2, "#c7ccd4"]]  # no value lies between the two
    scale += [[cut + (1 - cut) * i / (len(viridis) - 1), c] for i, c in enumerate(viridis)]
    colour = [r.accuracy if r.outcome == "completed" else grey for r in trained]
    if all(r.params for r in trained):
        dims.append(
            {
                "label": "params (M)",
                "values": [(r.params or 0) / 1e6 for r in trained],
                "tickformat": ".2~f",
            }
        )
    accuracies = [r.accuracy for r in trained]
    fmt = ".2%" if hi - lo < 0.01 else ".1%"  # close accuracies need the second decimal
    dims.append({"label": "val accuracy", "values": accuracies, "tickformat": fmt})
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": colour,
                "colorscale": scale,
                "cmin": grey,
                "cmax": hi,
                "showscale": True,
                "colorbar": {
                    "title": {"text": "val acc."},
                    "tickformat": fmt,
                    "len": 0.8,
                    "x": 1.0,
                    "xanchor": "left",
                },
            },
            dimensions=dims,
            domain={"x": [0.0, 0.93]},
            labelangle=-30 if len(dims) > 10 else 0,
            labelside="top",
            labelfont={"size": 12},
            tickfont={"size": 11},
        )
    )
    _layout(fig, height=540, margin={"l": 60, "r": 40, "t": 110 if len(dims) > 10 else 60})
    if len(dims) > _PARCOORDS_FIT:  # too many axes for the page: wider, scrolled sideways
        fig.update_layout(width=_PARCOORDS_AXIS_PX * len(dims) + 200)
        section.caption += f" {len(dims)} axes: scroll sideways."
    section.figure = fig
    return section


def _dimension(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """A parcoords axis: numbers stay numbers; anything else (``global``) is a category, and
    a missing value (a layer the trial lacks) sits below the rest as 'n/a'."""
    present = [v for v in values if v is not None]
    numeric = all(_is_number(v) for v in present)
    if numeric and present and len(set(present)) > 8:
        lo, hi = min(present), max(present)
        if len(present) == len(values):
            return {"label": name, "values": list(values), "range": [lo, hi]}
        na = lo - max((hi - lo) * 0.12, 1)
        ticks = [lo + (hi - lo) * i / 4 for i in range(5)]
        return {
            "label": name,
            "values": [na if v is None else v for v in values],
            "range": [na, hi],
            "tickvals": [na, *ticks],
            "ticktext": ["n/a", *(f"{t:g}" for t in ticks)],
        }
    # Few values (or categories): one evenly spaced tick per value, in natural order.
    order = sorted(set(present), key=lambda v: (not _is_number(v), v if _is_number(v) else str(v)))
    index = {v: i for i, v in enumerate(order)}
    has_na = len(present) < len(values)
    codes = [index[v] if v is not None else -1 for v in values]
    tickvals = ([-1] if has_na else []) + list(range(len(order)))
    ticktext = (["n/a"] if has_na else []) + [str(v) for v in order]
    low = -1 if has_na else 0
    high = max(len(order) - 1, low + 1)
    return {
        "label": name,
        "values": codes,
        "range": [low, high],
        "tickvals": tickvals,
        "ticktext": ticktext,
    }


def figure_curves(top: Sequence[Row], *, n: int) -> Section:
    """Figure 5: validation accuracy per epoch of the top trials."""
    section = Section(
        "learning-curves",
        f"Learning curves of the top {n} trials",
        "Validation accuracy after each epoch of the trials in the table below (dashed: "
        "pruned); a curve still rising at the end would gain from more epochs.",
    )
    with_curves = [r for r in top if r.curve]
    if not with_curves:
        section.note = "No trained trial has recorded a learning curve yet."
        return section
    fig = go.Figure()
    for rank, r in enumerate(top, 1):
        if not r.curve:
            continue
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(r.curve) + 1)),
                y=r.curve,
                mode="lines+markers" if len(r.curve) < 15 else "lines",
                name=f"#{rank} trial {r.number}: {r.arch}",
                line={"dash": "solid" if r.outcome == "completed" else "dash", "width": 2},
                marker={"size": 5},
                hovertemplate=(
                    f"trial {r.number} ({html.escape(r.arch)})<br>epoch %{{x}}: "
                    "%{y:.2%}<extra></extra>"
                ),
            )
        )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1~%")
    _layout(fig, height=460, legend={"font": {"size": 11}})
    section.figure = fig
    return section


def figure_timeline(rows: Sequence[Row], *, now: datetime.datetime) -> Section:
    """Figure 6: when each trial ran, one row per worker."""
    section = Section(
        "timeline",
        "Timeline per worker",
        "One row per worker (host/worker/GPU), one bar per trial from start to end, coloured "
        "by outcome; gaps are idle time (rejections take milliseconds and barely show).",
    )
    timed = [r for r in rows if r.start is not None]
    if not timed:
        section.note = "No trial has started yet."
        return section
    workers = sorted({r.worker for r in timed})
    fig = go.Figure()
    for outcome, group in _group_by(timed, lambda r: r.outcome).items():
        ends = [r.end or now for r in group]
        starts = [r.start for r in group]
        fig.add_trace(
            go.Bar(
                orientation="h",
                y=[r.worker for r in group],
                base=[s.isoformat() for s in starts if s is not None],
                x=[
                    max((e - s).total_seconds() * 1000, 1.0)
                    for s, e in zip(starts, ends, strict=True)
                    if s is not None
                ],
                name=f"{outcome} ({len(group)})",
                marker={"color": COLOURS.get(outcome, "#6b7280"), "line": {"width": 0}},
                customdata=[
                    [
                        r.number,
                        html.escape(r.arch),
                        r.outcome,
                        _duration((r.end or now) - s) if (s := r.start) else "",
                    ]
                    for r in group
                ],
                hovertemplate=(
                    "<b>trial %{customdata[0]}</b> (%{customdata[2]})<br>%{customdata[1]}<br>"
                    "%{customdata[3]}<extra></extra>"
                ),
            )
        )
    fig.update_xaxes(type="date", title_text="time")
    fig.update_yaxes(categoryorder="array", categoryarray=workers[::-1], type="category")
    _layout(
        fig,
        height=max(260, 120 + 46 * len(workers)),
        barmode="overlay",
        bargap=0.35,
        margin={"l": 150, "r": 30, "t": 30, "b": 55},
    )
    section.figure = fig
    return section


def _group_by(rows: Iterable[Row], key: Callable[[Row], str]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def _duration(delta: datetime.timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


# ---------------------------------------------------------------------------------------------
# HTML


def top_table(top: Sequence[Row], config: StudyConfig, *, front: set[int]) -> str:
    """The top trials as an HTML table, each with its ``optuna-search train`` command."""
    data = dataclasses.asdict(config.data)
    head = (
        "<tr><th>#</th><th>trial</th><th>architecture</th><th class=num>params</th>"
        "<th class=num>MACs</th><th class=num>val acc.</th><th class=num>epochs</th>"
        "<th>outcome</th><th class=num>test acc. (retrain)</th></tr>"
    )
    body = []
    for rank, r in enumerate(top, 1):
        outcome = r.outcome + (", Pareto front" if r.number in front else "")
        retrain = r.attrs.get("retrain")
        test = "-"
        if isinstance(retrain, Mapping) and _is_number(retrain.get("test_accuracy")):
            test = f"{retrain['test_accuracy']:.2%} ({retrain.get('epochs', '?')} epochs)"
        spec, recipe = r.attrs.get("spec"), r.attrs.get("recipe")
        command = train_command(spec, recipe, data=data) if spec and recipe else None
        cells = [
            str(rank),
            str(r.number),
            f"<span class=arch>{html.escape(r.arch)}</span>",
            f"{r.params:,}" if r.params is not None else "-",
            f"{r.macs / 1e6:,.1f} M" if r.macs is not None else "-",
            f"{r.accuracy:.2%}" if r.accuracy is not None else "-",
            str(r.epochs if r.epochs is not None else "-"),
            html.escape(outcome),
            html.escape(test),
        ]
        classes = ["", "", "", "num", "num", "num", "num", "", "num"]
        tds = "".join(
            f"<td class={c}>{v}</td>" if c else f"<td>{v}</td>"
            for c, v in zip(classes, cells, strict=True)
        )
        body.append(f"<tr class=main>{tds}</tr>")
        if command:
            body.append(
                f"<tr class=cmd><td></td><td colspan=8>retrain: "
                f"<code class=train-command>{html.escape(command)}</code></td></tr>"
            )
    rows_html = "".join(body)
    return f"<table class=top id=top-trials><thead>{head}</thead><tbody>{rows_html}</tbody></table>"


_CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f6f7f9; --card:#fff;
        --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif; }
main { max-width:1180px; margin:0 auto; padding:28px 24px 60px; }
header h1 { font-size:26px; margin:0 0 4px; }
header .desc { color:var(--muted); margin:0 0 14px; font-size:16px; }
.meta { display:flex; flex-wrap:wrap; gap:6px 18px; color:var(--muted); font-size:13.5px;
        margin-bottom:16px; }
.meta b { color:var(--ink); font-weight:600; }
.counts { display:flex; flex-wrap:wrap; gap:10px; margin:0 0 16px; padding:0; list-style:none; }
.counts li { background:var(--card); border:1px solid var(--line); border-radius:8px;
             padding:8px 14px; min-width:104px; }
.counts .n { display:block; font-size:22px; font-weight:650; }
.counts .what { color:var(--muted); font-size:12.5px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
        padding:18px 22px; margin:18px 0; }
.best h2 { margin-top:0; }
.best .arch { font-size:17px; }
.banner { background:#fff7ed; border:1px solid #fed7aa; color:#9a3412; border-radius:8px;
          padding:10px 14px; margin:12px 0; }
section.fig h2, .best h2, .table h2 { font-size:19px; margin:0 0 2px; }
section.fig .caption { color:var(--muted); margin:0 0 8px; font-size:14px; max-width:70em; }
.note { color:var(--muted); font-style:italic; padding:28px 0; text-align:center;
        border:1px dashed var(--line); border-radius:8px; }
.arch { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:13px; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px;
       background:#f3f4f6; border-radius:4px; padding:1px 5px; overflow-wrap:anywhere; }
table.top { border-collapse:collapse; width:100%; font-size:14px; }
table.top th { text-align:left; color:var(--muted); font-weight:600; font-size:12.5px;
               border-bottom:2px solid var(--line); padding:6px 8px; }
table.top td { padding:6px 8px; vertical-align:top; }
table.top tr.main td { border-top:1px solid var(--line); }
table.top tr.cmd td { padding-top:0; color:var(--muted); font-size:12.5px; }
.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
footer { color:var(--muted); font-size:12.5px; margin-top:30px; }
.scroll { overflow-x:auto; }
details.card summary { cursor:pointer; font-weight:600; }
details.card pre { font-size:12.5px; overflow-x:auto; margin:10px 0 0; }
"""


def _counts(rows: Sequence[Row]) -> list[tuple[str, int]]:
    c = Counter(r.outcome for r in rows)
    verdicts = Counter(r.verdict for r in rows if r.outcome == "rejected")
    items = [
        ("trained", c["completed"] + c["pruned"]),
        ("completed", c["completed"]),
        ("pruned", c["pruned"]),
        ("rejected over budget", verdicts["over_budget"]),
        ("invalid", verdicts["invalid"]),
        ("reused", c["reused"]),
        ("failed", sum(c[o] for o in _FAILED)),
    ]
    extra = [
        ("running", c["running"]),
        ("waiting", c["waiting"]),
        ("skipped (duplicate/surplus)", c["duplicate"] + c["surplus"]),
    ]
    return items + [(k, v) for k, v in extra if v]


def _best_html(study: optuna.Study, rows: Sequence[Row], config: StudyConfig) -> str:
    by_number = {r.number: r for r in rows}
    best = [by_number[t.number] for t in best_trials(study) if t.number in by_number]
    if not best:
        return (
            "<div class='card best'><h2>Best so far</h2>"
            "<p class=note>No trial has completed yet.</p></div>"
        )
    data = dataclasses.asdict(config.data)

    def line(r: Row) -> str:
        retrain = r.attrs.get("retrain")
        test = ""
        if isinstance(retrain, Mapping) and _is_number(retrain.get("test_accuracy")):
            test = (
                f"; retrained {retrain.get('epochs', '?')} epochs: test accuracy "
                f"<b>{retrain['test_accuracy']:.2%}</b>"
            )
        params = f"{r.params:,} params" if r.params is not None else "? params"
        macs = f", {r.macs / 1e6:,.1f} M MACs" if r.macs is not None else ""
        spec, recipe = r.attrs.get("spec"), r.attrs.get("recipe")
        cmd = (
            f"<br>retrain: <code>{html.escape(train_command(spec, recipe, data=data))}</code>"
            if spec and recipe
            else ""
        )
        blocks = ""
        if isinstance(spec, Mapping):
            parts = ", ".join(
                f"{label} {spec.get(key)}"
                for label, key in [
                    ("blocks", "blocks"),
                    ("channels", "channels"),
                    ("kernels", "kernels"),
                    ("shortcut kernels", "shortcut_kernels"),
                    ("strides", "strides"),
                    ("pool", "pool"),
                    ("stem", "stem_channels"),
                ]
            )
            blocks = f"<br>{html.escape(parts)}"
        accuracy = f"<b>{r.accuracy:.2%}</b>" if r.accuracy is not None else "?"
        epochs = f" after {r.epochs} epochs" if r.epochs is not None else ""
        return (
            f"<p><span class=arch>{html.escape(r.arch)}</span> (trial {r.number}): "
            f"val accuracy {accuracy}{epochs}, {params}{macs}{test}{blocks}{cmd}</p>"
        )

    if len(best) == 1:
        return f"<div class='card best'><h2>Best so far</h2>{line(best[0])}</div>"
    smallest = min(best, key=lambda r: r.params or 0)
    return (
        f"<div class='card best'><h2>Pareto front: {len(best)} trials</h2>"
        f"<p>Most accurate:</p>{line(best[0])}<p>Smallest on the front:</p>{line(smallest)}</div>"
    )


def _header_html(
    study: optuna.Study, config: StudyConfig, rows: Sequence[Row], *, now: datetime.datetime
) -> str:
    attrs = study.user_attrs
    objectives = attrs.get("objectives") or study.metric_names or list(config.objectives)
    directions = [d.name.lower() for d in study.directions]
    objective_text = ", ".join(f"{o} ({d})" for o, d in zip(objectives, directions, strict=False))
    max_params = attrs.get("max_params", config.max_params)
    max_macs = attrs.get("max_macs", config.max_macs)
    budget = f"{max_params:,} parameters" if max_params else "none"
    if max_macs:
        budget += f", {max_macs:,} MACs"
    starts = [r.start for r in rows if r.start]
    ends = [r.end for r in rows if r.end]
    span = ""
    if starts:
        first, last = min(starts), max(ends) if ends else now
        end = f"{last:%H:%M}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M}"
        span = f"{first:%Y-%m-%d %H:%M} to {end} ({_duration(last - first)})"
    devices = sorted({str(r.attrs["device"]) for r in rows if r.attrs.get("device")})
    workers = sorted({r.worker for r in rows if r.start})
    meta = [
        ("objectives", objective_text),
        ("budget", budget),
        ("trials to train", str(attrs.get("trials", config.trials) or "no limit")),
        ("data", f"{config.data.dataset}, {config.data.val_size:,} validation images"),
        ("sampler", config.sampler.name),
        ("pruner", config.pruner.name),
        ("ran", span or "not yet"),
        ("workers", str(len(workers))),
    ]
    if devices:
        meta.append(("devices", ", ".join(devices)))
    meta_html = "".join(f"<span>{k}: <b>{html.escape(v)}</b></span>" for k, v in meta)
    counts = "".join(
        f"<li><span class=n>{n}</span><span class=what>{html.escape(k)}</span></li>"
        for k, n in _counts(rows)
    )
    banners = []
    if any(r.attrs.get("dry_run") for r in rows):
        banners.append(
            "Dry run: training was replaced by a sleep, so the accuracies are stand-in scores."
        )
    if config.data.dataset != "cifar10":
        banners.append(
            f"Data set: {config.data.dataset}, not CIFAR-10; the paper's reference points are "
            "left out."
        )
    if not any(r.trained for r in rows):
        banners.append(
            "No trial has trained yet"
            + (
                f" ({len(rows)} trials so far, none trained)."
                if rows
                else " (the study holds no trial)."
            )
        )
    banner_html = "".join(f"<div class=banner>{html.escape(b)}</div>" for b in banners)
    return (
        f"<header><h1>Study {html.escape(study.study_name)}</h1>"
        f"<p class=desc>{html.escape(config.description or '')}</p>"
        f"<div class=meta>{meta_html}</div><ul class=counts>{counts}</ul>{banner_html}</header>"
    )


def _config_html(study: optuna.Study) -> str:
    """The study's config as stored with it (folded), so that a reader sees the space."""
    text = study.user_attrs.get("config_yaml")
    if not isinstance(text, str) or not text.strip():
        return ""
    return (
        "<details class=card id=study-config><summary>Study config (as stored with the study)"
        f"</summary><pre>{html.escape(text)}</pre></details>"
    )


def _figure_html(section: Section, number: int) -> str:
    head = (
        f"<section class='card fig' id=section-{section.slug}>"
        f"<h2>{number}. {html.escape(section.title)}</h2>"
        f"<p class=caption>{html.escape(section.caption)}</p>"
    )
    if section.body_html is not None:
        return head + section.body_html + "</section>"
    if section.figure is None:
        note = html.escape(section.note or "Nothing to show yet.")
        return head + f"<p class=note id=fig-{section.slug}>{note}</p></section>"
    width = section.figure.layout.width
    div = pio.to_html(
        section.figure,
        full_html=False,
        include_plotlyjs=False,
        div_id=f"fig-{section.slug}",
        default_width=f"{width}px" if width else "100%",
        default_height=f"{section.figure.layout.height or 450}px",
        config={
            "displaylogo": False,
            "responsive": True,
            "toImageButtonOptions": {"format": "png", "filename": section.slug, "scale": 2},
        },
    )
    if width:
        div = f"<div class=scroll>{div}</div>"
    return head + div + "</section>"


def build_sections(
    study: optuna.Study,
    config: StudyConfig,
    rows: Sequence[Row],
    *,
    top: int,
    now: datetime.datetime,
) -> list[Section]:
    """The report's seven sections, in order (figures, or notes where there is no data)."""
    multi = len(study.directions) > 1
    objectives = study.user_attrs.get("objectives") or list(config.objectives)
    size_key = "macs" if multi and len(objectives) > 1 and objectives[1] == "macs" else "params"
    max_params = study.user_attrs.get("max_params", config.max_params)
    ranked = rank_top(rows, study, top)
    front = {t.number for t in best_trials(study)} if multi else set()
    table = Section(
        "top-trials",
        f"Top {top} trials",
        "Completed trials by validation accuracy"
        + (" (the Pareto front first)" if multi else "")
        + ", then pruned ones, each with the command that retrains it (raise --epochs for a "
        "final run); test accuracy appears once 'optuna-search retrain' has run.",
    )
    if ranked:
        table.body_html = top_table(ranked, config, front=front)
    else:
        table.note = "No trial has trained yet."
    return [
        figure_accuracy_vs_size(
            rows,
            study,
            max_params=max_params,
            size_key=size_key,
            show_paper=config.data.dataset == "cifar10",
        ),
        figure_history(rows, objective=str(objectives[0])),
        figure_importances(study, multi=multi),
        figure_parallel(rows, study),
        figure_curves(ranked, n=top),
        figure_timeline(rows, now=now),
        table,
    ]


def render_html(study: optuna.Study, config: StudyConfig, *, top: int = 10) -> str:
    """The whole report as one HTML document (plotly.js inline, no network needed)."""
    now = datetime.datetime.now()
    rows = read_rows(study)
    sections = build_sections(study, config, rows, top=top, now=now)
    body = "".join(_figure_html(s, i) for i, s in enumerate(sections, 1))
    title = html.escape(f"optuna-search report: {study.study_name}")
    plotly_js = get_plotlyjs()  # about 4.7 MB, once for all figures: the file works offline
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{plotly_js}</script></head><body><main>"
        + _header_html(study, config, rows, now=now)
        + _best_html(study, rows, config)
        + body
        + _config_html(study)
        + f"<footer>Generated {now:%Y-%m-%d %H:%M} by optuna-search report, Optuna "
        f"{html.escape(optuna.__version__)}. Accuracies are validation accuracies on the "
        "held-out split unless marked as test.</footer></main></body></html>"
    )


# ---------------------------------------------------------------------------------------------
# Entry point


def write_report(
    study: optuna.Study,
    config: StudyConfig,
    output: str | Path,
    *,
    fmt: str = "html",
    top: int = 10,
) -> list[Path]:
    """Write the report: one HTML file at ``output`` (``fmt="html"``), or one PNG per figure
    in the folder ``output`` (``fmt="png"``, needs kaleido and Chromium). Returns the paths.

    Raises :class:`search.cli.UsageError` (one line, with the fix) for a bad output path or
    when PNG export cannot run here.
    """
    path = Path(output)
    if fmt == "html":
        if path.is_dir():
            raise UsageError(f"{path} is a folder: give a file name for the HTML report")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(study, config, top=top), encoding="utf-8")
        return [path]
    if fmt != "png":
        raise UsageError(f"format {fmt!r}: use html or png")
    return _write_pngs(study, config, path, top=top)


_PNG_FIX = (
    "pip install kaleido (>=1.0) and a Chromium it can start (Debian: apt-get install chromium, "
    "or set BROWSER_PATH), or use --format html"
)


def _write_pngs(study: optuna.Study, config: StudyConfig, folder: Path, *, top: int) -> list[Path]:
    try:
        import kaleido  # noqa: F401  (plotly's exporter; checked first for a clear message)
    except ImportError:
        raise UsageError(f"--format png needs kaleido: {_PNG_FIX}") from None
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file: --format png writes PNGs into a folder")
    sections = build_sections(study, config, read_rows(study), top=top, now=datetime.datetime.now())
    figures, paths = [], []
    for i, s in enumerate(sections, 1):
        if s.figure is None:
            continue
        fig = go.Figure(s.figure)
        fig.update_layout(
            title={
                "text": f"{study.study_name}: {s.title}",
                "x": 0.01,
                "xanchor": "left",
                "y": 0.99,
                "yanchor": "top",
                "yref": "container",
            },
            margin={"t": (fig.layout.margin.t or 30) + 40},
        )
        figures.append(fig)
        paths.append(folder / f"{i:02d}-{s.slug}.png")
    if not figures:
        raise UsageError(f"study {study.study_name} has nothing to plot yet: no trial has run")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        pio.write_images(
            figures,
            paths,
            format="png",
            width=[max(1200, int(f.layout.width or 0)) for f in figures],
            height=[int(f.layout.height or 450) + 40 for f in figures],
            scale=1,
        )
    except Exception as e:  # kaleido's errors: no browser, a browser that cannot start, ...
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a failed export leaves nothing behind
        raise UsageError(f"--format png failed ({_first_line(e)}): {_PNG_FIX}") from None
    return paths
