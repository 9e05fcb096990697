"""The report as one HTML page: its sections in order (:func:`build_sections`), the header
(the study, its budget, what the trials did), the best-trial card, each section with its
caption, the study's config (folded), and the page's style."""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence

import optuna
import plotly.io as pio
from plotly.offline import get_plotlyjs

from search.config import DataConfig, StudyConfig
from search.record import StudyRecord
from search.report.domain import figure_accuracy_vs_size, figure_curves, section_top_trials
from search.report.generic import (
    figure_history,
    figure_importances,
    figure_parallel,
    figure_timeline,
)
from search.report.info import (
    BestInfo,
    HeaderInfo,
    accuracy_info,
    best_info,
    header_info,
    history_info,
    importances_info,
    max_params_of,
    objectives_of,
    parallel_info,
    timeline_info,
)
from search.report.rows import Row, SizeKey, front_numbers, rank_top, read_rows
from search.report.style import Section, duration
from search.samplers import describe
from search.storage import redact


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
    objectives = objectives_of(study, config)
    size_key: SizeKey = (
        "macs" if multi and len(objectives) > 1 and objectives[1] == "macs" else "params"
    )
    accuracy = accuracy_info(
        rows,
        study,
        max_params=max_params_of(study, config),
        size_key=size_key,
        show_paper=config.data.dataset == "cifar10",
    )
    ranked = rank_top(rows, study, top)
    return [
        figure_accuracy_vs_size(accuracy),
        figure_history(history_info(rows), objective=objectives[0]),
        figure_importances(importances_info(study), multi=multi),
        figure_parallel(parallel_info(rows, study)),
        figure_curves(ranked, n=top),
        figure_timeline(timeline_info(rows, now=now)),
        section_top_trials(ranked, config, n=top, multi=multi, front=front_numbers(study)),
    ]


def render_html(study: optuna.Study, config: StudyConfig, *, top: int = 10) -> str:
    """The whole report as one HTML document (plotly.js inline, no network needed)."""
    now = datetime.datetime.now()
    rows = read_rows(study)
    sections = build_sections(study, config, rows, top=top, now=now)
    body = "".join(_section_html(s, i) for i, s in enumerate(sections, 1))
    title = html.escape(f"optuna-search report: {study.study_name}")
    plotly_js = get_plotlyjs()  # about 4.7 MB, once for all figures: the file works offline
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{plotly_js}</script></head><body><main>"
        + _header_html(study, config, header_info(study, config, rows, now=now))
        + _best_html(best_info(study, rows), config.data)
        + body
        + _config_html(study)
        + f"<footer>Generated {now:%Y-%m-%d %H:%M} by optuna-search report, Optuna "
        f"{html.escape(optuna.__version__)}. Accuracies are validation accuracies on the "
        "held-out split unless marked as test.</footer></main></body></html>"
    )


def _section_html(section: Section, number: int) -> str:
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


def _header_html(study: optuna.Study, config: StudyConfig, info: HeaderInfo) -> str:
    objectives = ", ".join(f"{name} ({direction})" for name, direction in info.objectives)
    budget = f"{info.max_params:,} parameters" if info.max_params else "none"
    if info.max_macs:
        budget += f", {info.max_macs:,} MACs"
    meta = [
        ("objectives", objectives),
        ("budget", budget),
        ("trials to train", str(info.to_train or "no limit")),
        ("data", f"{config.data.dataset}, {config.data.val_size:,} validation images"),
        ("sampler", describe(config.sampler.name, config.sampler.kwargs)),
        ("pruner", describe(config.pruner.name, config.pruner.kwargs)),
        ("ran", _span(info.first_start, info.last_end)),
        ("workers", str(info.workers)),
    ]
    if info.devices:
        meta.append(("devices", ", ".join(info.devices)))
    meta_html = "".join(f"<span>{k}: <b>{html.escape(v)}</b></span>" for k, v in meta)
    counts = "".join(
        f"<li><span class=n>{n}</span><span class=what>{html.escape(k)}</span></li>"
        for k, n in info.counts
    )
    banner_html = "".join(
        f"<div class=banner>{html.escape(b)}</div>" for b in _banners(info, config)
    )
    return (
        f"<header><h1>Study {html.escape(study.study_name)}</h1>"
        f"<p class=desc>{html.escape(config.description or '')}</p>"
        f"<div class=meta>{meta_html}</div><ul class=counts>{counts}</ul>{banner_html}</header>"
    )


def _span(first: datetime.datetime | None, last: datetime.datetime | None) -> str:
    if first is None or last is None:
        return "not yet"
    end = f"{last:%H:%M}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M}"
    return f"{first:%Y-%m-%d %H:%M} to {end} ({duration(last - first)})"


def _banners(info: HeaderInfo, config: StudyConfig) -> list[str]:
    """What a reader must know before reading the figures."""
    banners = []
    if info.dry_run:
        banners.append(
            "Dry run: training was replaced by a sleep, so the accuracies are stand-in scores."
        )
    if config.data.dataset != "cifar10":
        banners.append(
            f"Data set: {config.data.dataset}, not CIFAR-10; the paper's reference points are "
            "left out."
        )
    if not info.any_trained:
        banners.append(
            "No trial has trained yet"
            + (
                f" ({info.trials} trials so far, none trained)."
                if info.trials
                else " (the study holds no trial)."
            )
        )
    return banners


def _best_html(info: BestInfo, data: DataConfig) -> str:
    if not info.trials:
        return (
            "<div class='card best'><h2>Best so far</h2>"
            "<p class=note>No trial has completed yet.</p></div>"
        )
    if len(info.trials) == 1:
        return (
            f"<div class='card best'><h2>Best so far</h2>{_best_line(info.trials[0], data)}</div>"
        )
    return (
        f"<div class='card best'><h2>Pareto front: {len(info.trials)} trials</h2>"
        f"<p>Most accurate:</p>{_best_line(info.trials[0], data)}"
        f"<p>Smallest on the front:</p>{_best_line(info.smallest, data)}</div>"
    )


_SPEC_PARTS = (
    ("blocks", "blocks"),
    ("channels", "channels"),
    ("kernels", "kernels"),
    ("shortcut kernels", "shortcut_kernels"),
    ("strides", "strides"),
    ("pool", "pool"),
    ("stem", "stem_channels"),
)
"""The architecture's fields in a best trial's line: (label, key of ``ResNetSpec.to_dict()``)."""


def _best_line(r: Row, data: DataConfig) -> str:
    """A best trial: accuracy, size, test accuracy once retrained, architecture, command."""
    accuracy = f"<b>{r.accuracy:.2%}</b>" if r.accuracy is not None else "?"
    epochs = f" after {r.epochs} epochs" if r.epochs is not None else ""
    params = f"{r.params:,} params" if r.params is not None else "? params"
    macs = f", {r.macs / 1e6:,.1f} M MACs" if r.macs is not None else ""
    test, tested = "", r.tested
    if tested:
        retrained = tested.epochs if tested.epochs is not None else "?"
        test = f"; retrained {retrained} epochs: test accuracy <b>{tested.test_accuracy:.2%}</b>"
    spec = r.record.spec
    blocks = ""
    if spec is not None:
        parts = ", ".join(f"{label} {spec.get(key)}" for label, key in _SPEC_PARTS)
        blocks = f"<br>{html.escape(parts)}"
    command = r.retrain_command(data)
    cmd = f"<br>retrain: <code>{html.escape(command)}</code>" if command else ""
    return (
        f"<p><span class=arch>{html.escape(r.arch)}</span> (trial {r.number}): "
        f"val accuracy {accuracy}{epochs}, {params}{macs}{test}{blocks}{cmd}</p>"
    )


def _config_html(study: optuna.Study) -> str:
    """The study's config as stored with it (folded), so that a reader sees the space."""
    text = StudyRecord.of(study).config_yaml
    if not isinstance(text, str) or not text.strip():
        return ""
    text = redact(text)  # a study written before passwords were left out of it
    return (
        "<details class=card id=study-config><summary>Study config (as stored with the study)"
        f"</summary><pre>{html.escape(text)}</pre></details>"
    )


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
