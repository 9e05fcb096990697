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

The modules, each with one job: :mod:`~search.report.rows` reads each trial once as a
:class:`Row` and ranks them; :mod:`~search.report.info` chooses and computes what each
figure shows; :mod:`~search.report.domain` and :mod:`~search.report.generic` draw the
figures; :mod:`~search.report.style` is their common look; :mod:`~search.report.page`
assembles the HTML; :mod:`~search.report.export` writes it, or PNGs.

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

from search.report.domain import figure_accuracy_vs_size, figure_curves, top_table
from search.report.export import write_report
from search.report.generic import (
    figure_history,
    figure_importances,
    figure_parallel,
    figure_timeline,
)
from search.report.info import PAPER_POINTS, PaperPoint
from search.report.page import build_sections, render_html
from search.report.rows import Row, pareto_steps, rank_top, read_rows
from search.report.style import COLOURS, Section

__all__ = [
    "COLOURS",
    "PAPER_POINTS",
    "PaperPoint",
    "Row",
    "Section",
    "build_sections",
    "figure_accuracy_vs_size",
    "figure_curves",
    "figure_history",
    "figure_importances",
    "figure_parallel",
    "figure_timeline",
    "pareto_steps",
    "rank_top",
    "read_rows",
    "render_html",
    "top_table",
    "write_report",
]
