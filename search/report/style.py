"""The report's look, shared by every figure: the :class:`Section` a figure fills, colours and
fonts, the common layout, the trials' hover text and markers, and how durations and errors
read."""

from __future__ import annotations

import dataclasses
import datetime
import html
from collections.abc import Sequence

import plotly.graph_objects as go

from search.record import Outcome
from search.report.rows import Row

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
    "carried": "#93c5fd",
    "front": "#ea580c",
    "paper": "#111827",
}
"""By outcome (its value), verdict, or part of a figure."""
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


def colour(outcome: Outcome) -> str:
    # By value: a str enum hashes by its name, so it would miss the table's keys.
    return COLOURS.get(outcome.value, "#6b7280")


@dataclasses.dataclass
class Section:
    slug: str
    """Used for the div id (``fig-SLUG``) and the PNG name (``NN-SLUG.png``)."""
    title: str
    caption: str
    figure: go.Figure | None = None
    note: str | None = None
    """Why there is no figure."""
    body_html: str | None = None
    """HTML in place of a figure (the table)."""


def layout(fig: go.Figure, *, height: int, **extra: object) -> go.Figure:
    """The report's common look; ``extra`` layout keys are merged over it."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        font={"family": FONT, "size": 13, "color": "#1f2937"},
        margin={"l": 70, "r": 30, "t": 30, "b": 55},
        hoverlabel={"font": {"family": FONT}},
        legend={"bgcolor": "rgba(255,255,255,0.85)"},
    )
    fig.update_layout(**extra)
    return fig


def hover(rows: Sequence[Row]) -> tuple[list[list[int | str]], str]:
    """Each trial's hover text (as customdata) and the template that shows it."""
    data: list[list[int | str]] = [
        [
            r.number,
            html.escape(r.arch),
            f"{r.params:,}" if r.params is not None else "-",
            f"{r.accuracy:.2%}" if r.accuracy is not None else "-",
            r.epochs if r.epochs is not None else "-",
            r.outcome.value,
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


def trial_points(
    outcome: Outcome,
    rows: Sequence[Row],
    x: Sequence[float | None],
    *,
    name: str,
    pruned_opacity: float,
    outline: bool = False,
) -> go.Scatter:
    """Trained trials as markers at their accuracy, with their hover text."""
    completed = outcome is Outcome.COMPLETED
    marker: dict[str, object] = {
        "color": colour(outcome),
        "size": 8 if completed else 6,
        "opacity": 0.9 if completed else pruned_opacity,
    }
    if outline:
        marker["line"] = {"width": 0.5, "color": "white"}
    data, template = hover(rows)
    return go.Scatter(
        x=list(x),
        y=[r.accuracy for r in rows],
        mode="markers",
        name=name,
        marker=marker,
        customdata=data,
        hovertemplate=template,
    )


def steps(xs: Sequence[float], ys: Sequence[float], name: str) -> go.Scatter:
    """A staircase in the front's colour: the Pareto front, or the best accuracy so far."""
    return go.Scatter(
        x=list(xs),
        y=list(ys),
        mode="lines",
        line={"shape": "hv", "color": COLOURS["front"], "width": 2},
        name=name,
        hoverinfo="skip",
    )


def duration(delta: datetime.timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def first_line(e: BaseException) -> str:
    """An error as one line: its type and the first line of its message."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
