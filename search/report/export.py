"""The entry point: write the report as one HTML file, or one PNG per figure (kaleido)."""

from __future__ import annotations

import datetime
from pathlib import Path

import optuna
import plotly.graph_objects as go
import plotly.io as pio

from search.config import StudyConfig
from search.errors import UsageError
from search.paths import writable_file, writable_folder
from search.report.page import build_sections, render_html
from search.report.rows import read_rows
from search.report.style import first_line


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

    Raises :class:`search.errors.UsageError` (one line, with the fix) for a bad output path or
    when PNG export cannot run here.
    """
    path = Path(output)
    if fmt == "html":
        writable_file(path, "-o")  # before the work: one line, nothing written
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(study, config, top=top), encoding="utf-8")
        return [path]
    if fmt != "png":
        raise UsageError(f"format {fmt!r}: use html or png")
    writable_folder(path, "-o")
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
        figures.append(_titled(s.figure, f"{study.study_name}: {s.title}"))
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
        raise UsageError(f"--format png failed ({first_line(e)}): {_PNG_FIX}") from None
    return paths


def _titled(figure: go.Figure, title: str) -> go.Figure:
    """A copy with a title above it: a PNG stands alone, without the page's headings."""
    fig = go.Figure(figure)
    fig.update_layout(
        title={
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "y": 0.99,
            "yanchor": "top",
            "yref": "container",
        },
        margin={"t": (fig.layout.margin.t or 30) + 40},
    )
    return fig
