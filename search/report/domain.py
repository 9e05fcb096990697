"""The figures of this search's own questions, drawn from their infos: accuracy against size
(with the budget, the front, the rejected strip and the paper's points), the learning curves
of the top trials, and the top-trials table with the command that retrains each."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from search.config import StudyConfig
from search.record import Outcome
from search.report.info import AccuracyInfo, Front, PaperPoint
from search.report.rows import Row, SizeKey
from search.report.style import COLOURS, Section, hover, layout, steps, trial_points

# ---------------------------------------------------------------------------------------------
# 1. Accuracy against size: the trained trials above, the rejected ones in a strip below


def figure_accuracy_vs_size(info: AccuracyInfo) -> Section:
    """Figure 1: accuracy against parameter count (MACs for a params-vs-MACs study)."""
    params = info.size_key == "params"
    title = "Accuracy against parameter count" if params else "Accuracy against MACs"
    section = Section("accuracy-vs-params", title, "")
    if not info.trained and not info.over:
        section.note = f"No trial has trained yet; rejected configurations: {info.rejected_note}."
        return section
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.84, 0.16], vertical_spacing=0.03
    )
    for trace in [
        *_trained_points(info),
        *_front_lines(info.front),
        *(_paper_point(p) for p in info.paper),
    ]:
        fig.add_trace(trace, row=1, col=1)
    for trace in _rejected_strip(info):
        fig.add_trace(trace, row=2, col=1)
    if info.budget:
        _budget_line(fig, info.budget)
    _axes(fig, info.size_key)
    layout(fig, height=640, legend={"x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"})
    section.figure = fig
    section.caption = _accuracy_caption(info)
    return section


def _trained_points(info: AccuracyInfo) -> list[go.Scatter]:
    return [
        trial_points(
            outcome,
            group,
            [r.size(info.size_key) for r in group],
            name=f"{outcome.value} ({len(group)})"
            + (", at last reported accuracy" if outcome is Outcome.PRUNED else ""),
            pruned_opacity=0.55,
            outline=True,
        )
        for outcome, group in info.trained.groups()
    ]


def _front_lines(front: Front | None) -> list[go.Scatter]:
    """The front's steps, on to its end; a Pareto front's trials circled, with their hover."""
    if front is None:
        return []
    xs = [size for size, _ in front.corners]
    ys = [accuracy for _, accuracy in front.corners]
    line = steps([*xs, front.end], [*ys, ys[-1]], front.name)
    if not front.marked:
        return [line]
    data, template = hover(front.marked)
    circles = go.Scatter(
        x=xs,
        y=ys,
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
    )
    return [line, circles]


def _paper_point(p: PaperPoint) -> go.Scatter:
    return go.Scatter(
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
    )


def _rejected_strip(info: AccuracyInfo) -> list[go.Scatter]:
    """Over-budget configurations at their size; invalid ones (no size) only counted."""
    traces = []
    if info.over:
        data, _ = hover(info.over)
        # Spread the strip vertically a little so that equal sizes do not hide each other.
        jitter = [((r.number * 7919) % 11 - 5) / 14 for r in info.over]
        reasons = [html.escape(r.record.reason or "") for r in info.over]
        traces.append(
            go.Scatter(
                x=[r.size(info.size_key) for r in info.over],
                y=jitter,
                mode="markers",
                name=f"rejected over budget ({len(info.over)})",
                marker={"color": COLOURS["over_budget"], "symbol": "line-ns-open", "size": 14},
                customdata=[[*d, reason] for d, reason in zip(data, reasons, strict=True)],
                hovertemplate=(
                    "<b>trial %{customdata[0]}</b>: rejected<br>%{customdata[1]}<br>"
                    "params %{customdata[2]}<br>%{customdata[7]}<extra></extra>"
                ),
            )
        )
    if info.invalid:  # no size to place them at: a legend entry with the count instead
        traces.append(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=f"rejected invalid ({len(info.invalid)}, no parameter count)",
                marker={"color": COLOURS["invalid"], "symbol": "x-thin-open", "size": 10},
            )
        )
    return traces


def _budget_line(fig: go.Figure, budget: int) -> None:
    """A dashed line at the budget, across both rows, labelled at the top."""
    fig.add_vline(
        x=budget,
        line={"color": COLOURS["over_budget"], "dash": "dash", "width": 1.5},
        row="all",
        col=1,
    )
    fig.add_annotation(
        x=math.log10(budget),  # a log axis places annotations by the exponent
        xref="x",
        y=1.0,
        yref="y domain",
        text=f"budget {budget:,}",
        showarrow=False,
        xanchor="right",
        yanchor="top",
        font={"color": COLOURS["over_budget"], "size": 12},
        xshift=-4,
    )


def _axes(fig: go.Figure, size_key: SizeKey) -> None:
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


def _accuracy_caption(info: AccuracyInfo) -> str:
    front_text = (
        "orange circles and steps: the Pareto front (no trial is both more accurate and smaller)"
        if info.multi
        else "grey: pruned, at their last (earlier) accuracy; orange steps: the best accuracy at "
        "or below each size"
    )
    caption = (
        f"Blue: completed trials; {front_text}; "
        + ("dashed: the budget; " if info.budget else "")
        + f"strip below: rejected configurations, {info.rejected_note}."
    )
    if info.paper:
        caption += (
            " Diamond and stars: the paper's TEST accuracies (selected on the test set), not "
            "comparable with our validation accuracies."
        )
    return caption


# ---------------------------------------------------------------------------------------------
# 5. Learning curves and 7. the table, of the same top trials


def figure_curves(top: Sequence[Row], *, n: int) -> Section:
    """Figure 5: validation accuracy per epoch of the top trials."""
    section = Section(
        "learning-curves",
        f"Learning curves of the top {n} trials",
        "Validation accuracy after each epoch of the trials in the table below (dashed: "
        "pruned); a curve still rising at the end would gain from more epochs.",
    )
    if not any(r.curve for r in top):
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
                line={"dash": "solid" if r.outcome is Outcome.COMPLETED else "dash", "width": 2},
                marker={"size": 5},
                hovertemplate=(
                    f"trial {r.number} ({html.escape(r.arch)})<br>epoch %{{x}}: "
                    "%{y:.2%}<extra></extra>"
                ),
            )
        )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1~%")
    layout(fig, height=460, legend={"font": {"size": 11}})
    section.figure = fig
    return section


def section_top_trials(
    top: Sequence[Row], config: StudyConfig, *, n: int, multi: bool, front: set[int]
) -> Section:
    """Section 7: the top trials as a table (a note before any has trained)."""
    section = Section(
        "top-trials",
        f"Top {n} trials",
        "Completed trials by validation accuracy"
        + (" (the Pareto front first)" if multi else "")
        + ", then pruned ones, each with the command that retrains it (raise --epochs for a "
        "final run); test accuracy appears once 'optuna-search retrain' has run.",
    )
    if top:
        section.body_html = top_table(top, config, front=front)
    else:
        section.note = "No trial has trained yet."
    return section


_COLUMNS = (
    ("#", ""),
    ("trial", ""),
    ("architecture", ""),
    ("params", "num"),
    ("MACs", "num"),
    ("val acc.", "num"),
    ("epochs", "num"),
    ("outcome", ""),
    ("test acc. (retrain)", "num"),
)
"""The table's columns: (heading, class)."""


def top_table(top: Sequence[Row], config: StudyConfig, *, front: set[int]) -> str:
    """The top trials as an HTML table, each with its ``optuna-search train`` command."""
    head = "".join(f"<th class={c}>{h}</th>" if c else f"<th>{h}</th>" for h, c in _COLUMNS)
    body = []
    for rank, r in enumerate(top, 1):
        cells = "".join(
            f"<td class={c}>{v}</td>" if c else f"<td>{v}</td>"
            for (_, c), v in zip(_COLUMNS, _cells(rank, r, front), strict=True)
        )
        body.append(f"<tr class=main>{cells}</tr>")
        command = r.retrain_command(config.data)
        if command:
            body.append(
                f"<tr class=cmd><td></td><td colspan=8>retrain: "
                f"<code class=train-command>{html.escape(command)}</code></td></tr>"
            )
    return (
        f"<table class=top id=top-trials><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _cells(rank: int, r: Row, front: set[int]) -> list[str]:
    outcome = r.outcome.value + (", Pareto front" if r.number in front else "")
    test, tested = "-", r.tested
    if tested:
        epochs = tested.epochs if tested.epochs is not None else "?"
        test = f"{tested.test_accuracy:.2%} ({epochs} epochs)"
    return [
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
