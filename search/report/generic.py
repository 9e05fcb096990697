"""The figures any Optuna study has, drawn from their infos in the report's look: the
optimisation history, parameter importances (Optuna's evaluator), parallel coordinates and a
timeline. ``optuna.visualization`` draws each of these, but not as this report needs them: each
function says why in its first comment."""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

from search.record import Outcome
from search.report.info import (
    MIN_COMPLETED_FOR_IMPORTANCES,
    Bar,
    HistoryInfo,
    ImportancesInfo,
    ParallelInfo,
    TimelineInfo,
)
from search.report.style import (
    COLOURS,
    Section,
    colour,
    duration,
    first_line,
    layout,
    steps,
    trial_points,
)
from search.space import arch_param_order

_PARCOORDS_FIT = 16
"""Parallel-coordinate axes that fit the page's width; more make the figure scroll."""
_PARCOORDS_AXIS_PX = 64
_VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
_PRUNED_GREY = "#c7ccd4"


def figure_history(info: HistoryInfo, *, objective: str) -> Section:
    """Figure 2: each trained trial's accuracy by trial number, and the best so far."""
    section = Section(
        "history",
        "Optimisation history",
        f"Each trained trial's {objective} by trial number (grey: pruned early); the orange "
        "line is the best completed so far; missing numbers are rejected configurations.",
    )
    if not info.trained:
        section.note = "No trial has trained yet."
        return section
    # Not optuna's plot_optimization_history: it leaves pruned trials out.
    fig = go.Figure()
    for outcome, group in info.trained.groups():
        numbers = [r.number for r in group]
        name = f"{outcome.value} ({len(group)})"
        fig.add_trace(trial_points(outcome, group, numbers, name=name, pruned_opacity=0.6))
    if info.best:
        xs, ys = zip(*info.best, strict=True)
        fig.add_trace(steps(xs, ys, "best so far"))
    fig.update_xaxes(title_text="trial number")
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1~%")
    layout(
        fig,
        height=420,
        legend={"orientation": "h", "x": 0.0, "y": 1.02, "yanchor": "bottom"},
        margin={"t": 40},
    )
    section.figure = fig
    return section


def figure_importances(info: ImportancesInfo, *, multi: bool) -> Section:
    """Figure 3: parameter importances of the completed trials (Optuna's default, PED-ANOVA)."""
    target = "reaching the Pareto front" if multi else "reaching the top validation accuracies"
    section = Section(
        "importances",
        "Parameter importances",
        f"How much each parameter matters for {target} (Optuna's PED-ANOVA over the completed "
        "trials; longer is more); blue: architecture, green: training recipe.",
    )
    if info.completed < MIN_COMPLETED_FOR_IMPORTANCES:
        section.note = (
            f"Too few completed trials ({info.completed}) to estimate parameter importances; "
            "they appear once a few trials have completed."
        )
        return section
    if info.error is not None:
        section.note = f"Parameter importances could not be computed: {first_line(info.error)}"
        return section
    if info.warning or not info.importances:
        section.note = (
            f"Parameter importances are not informative yet ({info.completed} completed trials): "
            + (info.warning or "no parameter varies.")
        )
        return section
    # Not optuna's plot_param_importances: for two objectives it plots one set per objective.
    names = list(info.importances)[::-1]  # most important on top
    values = [info.importances[n] for n in names]
    colours = [
        COLOURS["completed"] if arch_param_order(n) is not None else "#059669" for n in names
    ]
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
    layout(fig, height=max(260, 60 + 22 * len(names)), margin={"l": 150, "r": 50, "t": 20})
    section.figure = fig
    return section


def figure_parallel(info: ParallelInfo) -> Section:
    """Figure 4: the architecture parameters of the trained trials, coloured by accuracy."""
    section = Section(
        "parallel-coordinates",
        "Architecture parameters (parallel coordinates)",
        "One line per trained trial through its architecture values, coloured by validation "
        "accuracy (grey: pruned early); n/a: a layer the trial lacks; drag on an axis to filter.",
    )
    if not info.trained or not info.arch_names:
        section.note = (
            "No trial has trained yet."
            if not info.trained
            else "The study searches no architecture parameter."
        )
        return section
    # Not optuna's plot_parallel_coordinate: it drops the per-layer parameters a trial lacks.
    dims = info.dimensions
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": info.colour,
                "colorscale": _colour_scale(info.scale_from),
                "cmin": info.cmin,
                "cmax": info.cmax,
                "showscale": True,
                "colorbar": {
                    "title": {"text": "val acc."},
                    "tickformat": info.tickformat,
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
    layout(fig, height=540, margin={"l": 60, "r": 40, "t": 110 if len(dims) > 10 else 60})
    if len(dims) > _PARCOORDS_FIT:  # too many axes for the page: wider, scrolled sideways
        fig.update_layout(width=_PARCOORDS_AXIS_PX * len(dims) + 200)
        section.caption += f" {len(dims)} axes: scroll sideways."
    section.figure = fig
    return section


def _colour_scale(scale_from: float) -> list[tuple[float, str]]:
    """Viridis over the accuracies from ``scale_from`` on; grey below it, for pruned trials
    (no value lies between the two)."""
    grey = [(0.0, _PRUNED_GREY), (scale_from / 2, _PRUNED_GREY)] if scale_from else []
    last = len(_VIRIDIS) - 1
    return grey + [(scale_from + (1 - scale_from) * i / last, c) for i, c in enumerate(_VIRIDIS)]


def figure_timeline(info: TimelineInfo) -> Section:
    """Figure 6: when each trial ran, one row per worker."""
    section = Section(
        "timeline",
        "Timeline per worker",
        "One row per worker (host/worker/GPU), one bar per trial from start to end, coloured "
        "by outcome; gaps are idle time (rejections take milliseconds and barely show).",
    )
    if not info.bars:
        section.note = "No trial has started yet."
        return section
    # Not optuna's plot_timeline: it has one row per trial, not per worker.
    fig = go.Figure([_bars(outcome, bars) for outcome, bars in info.bars.items()])
    fig.update_xaxes(type="date", title_text="time")
    fig.update_yaxes(categoryorder="array", categoryarray=info.workers[::-1], type="category")
    layout(
        fig,
        height=max(260, 120 + 46 * len(info.workers)),
        barmode="overlay",
        bargap=0.35,
        margin={"l": 150, "r": 30, "t": 30, "b": 55},
    )
    section.figure = fig
    return section


def _bars(outcome: Outcome, bars: Sequence[Bar]) -> go.Bar:
    """The trials of one outcome, each a bar on its worker's row from its start to its end."""
    return go.Bar(
        orientation="h",
        y=[b.row.worker for b in bars],
        base=[b.start.isoformat() for b in bars],
        x=[max((b.end - b.start).total_seconds() * 1000, 1.0) for b in bars],
        name=f"{outcome.value} ({len(bars)})",
        marker={"color": colour(outcome), "line": {"width": 0}},
        customdata=[
            [b.row.number, html.escape(b.row.arch), outcome.value, duration(b.end - b.start)]
            for b in bars
        ],
        hovertemplate=(
            "<b>trial %{customdata[0]}</b> (%{customdata[2]})<br>%{customdata[1]}<br>"
            "%{customdata[3]}<extra></extra>"
        ),
    )
