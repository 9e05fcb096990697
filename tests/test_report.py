"""The HTML report (and PNGs) of real studies made with the CLI: one self-contained file with
every figure, the budget, the paper's points, the rejected strip and the top-trials table."""

from __future__ import annotations

import dataclasses
import datetime
import html
import os
import re
import shlex
import shutil
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from plotly.offline import get_plotlyjs

from search.cli import UsageError, build_parser, main
from search.config import load_config
from search.report import (
    PAPER_POINTS,
    Section,
    build_sections,
    pareto_steps,
    read_rows,
    write_report,
)
from search.results import train_command
from search.space import TRAINING_KEYS
from tests.conftest import run_cli

FIGURE_IDS = (
    "fig-accuracy-vs-params",
    "fig-history",
    "fig-importances",
    "fig-parallel-coordinates",
    "fig-learning-curves",
    "fig-timeline",
)
TITLES = (
    "1. Accuracy against parameter count",
    "2. Optimisation history",
    "3. Parameter importances",
    "4. Architecture parameters (parallel coordinates)",
    "5. Learning curves of the top",
    "6. Timeline per worker",
    "7. Top",
)


@dataclasses.dataclass(frozen=True)
class Made:
    """A study made by the real CLI: its name, storage URL and working folder."""

    name: str
    url: str
    folder: Path

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name=self.name, storage=self.url)


def _make(tmp: Path, name: str, *args: str) -> Made:
    url = f"sqlite:///{tmp / (name + '.db')}"
    proc = run_cli("run", "--study", name, "--storage", url, *args, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Made(name, url, tmp)


@pytest.fixture(scope="module")
def b453(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A dry run of the main search: many trials, rejected ones, two workers."""
    tmp = tmp_path_factory.mktemp("b453")
    return _make(tmp, "b453-space", "--workers", "2", "--n-trials", "24", "--dry-run", "0.02")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """The smoke study: really trained (tiny nets, synthetic data), one completed trial."""
    return _make(tmp_path_factory.mktemp("smoke"), "smoke")


@pytest.fixture(scope="module")
def pareto(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A two-objective study (val_accuracy, params)."""
    tmp = tmp_path_factory.mktemp("pareto")
    return _make(tmp, "pareto-wide", "--dry-run", "0.01", "--n-trials", "16")


@pytest.fixture(scope="module")
def b453_html(b453: Made) -> str:
    """The report of the b453 study, written by the CLI."""
    out = b453.folder / "out" / "report.html"
    proc = run_cli(
        "report", "--study", b453.name, "--storage", b453.url, "-o", str(out), cwd=b453.folder
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out}"
    return out.read_text(encoding="utf-8")


def _sections(made: Made, *, top: int = 10) -> list[Section]:
    study = made.load()
    config = load_config(made.name)
    return build_sections(study, config, read_rows(study), top=top, now=datetime.datetime.now())


def _by_slug(sections: list[Section]) -> dict[str, Section]:
    return {s.slug: s for s in sections}


def _attr_counts(study: optuna.Study) -> tuple[Counter[str], Counter[str]]:
    trials = study.get_trials(deepcopy=False)
    outcomes = Counter(str(t.user_attrs.get("outcome")) for t in trials)
    verdicts = Counter(str(t.user_attrs.get("verdict")) for t in trials)
    return outcomes, verdicts


# ---------------------------------------------------------------------------------------------
# One self-contained file with every part


def test_report_is_one_self_contained_html_file(b453: Made, b453_html: str) -> None:
    assert list((b453.folder / "out").iterdir()) == [b453.folder / "out" / "report.html"]
    assert b453_html.startswith("<!DOCTYPE html>") and b453_html.rstrip().endswith("</html>")
    # plotly.js inline, once; nothing loaded from the network (works offline, by email)
    assert not re.search(r"<script[^>]*\bsrc=", b453_html)
    assert not re.search(r"<link[^>]*\bhref=", b453_html)
    # (plotly.js mentions map-tile URLs inside; the browser test checks nothing is fetched)
    assert b453_html.count(get_plotlyjs()) == 1


def _has_id(text: str, div_id: str) -> bool:
    return re.search(rf'\bid="?{div_id}"?[ >]', text) is not None


def test_report_has_every_figure_with_a_caption(b453_html: str) -> None:
    for div_id in FIGURE_IDS:
        assert _has_id(b453_html, div_id), div_id
        plotted = re.search(rf'Plotly\.newPlot\(\s*"{div_id}"', b453_html) is not None
        # Importances need a few completed trials, which a short dry run may not have.
        assert plotted or (
            div_id == "fig-importances" and "<p class=note id=fig-importances>" in b453_html
        ), div_id
    for title in TITLES:
        assert title in b453_html, title
    assert b453_html.count("<p class=caption>") == 7
    assert "id=top-trials" in b453_html


def test_report_header_counts_and_best(b453: Made, b453_html: str) -> None:
    study = b453.load()
    outcomes, verdicts = _attr_counts(study)
    assert "<h1>Study b453-space</h1>" in b453_html
    assert html.escape(load_config("b453-space").description) in b453_html
    assert "val_accuracy (maximize)" in b453_html
    assert "5,000,000 parameters" in b453_html
    for label, n in [
        ("trained", outcomes["completed"] + outcomes["pruned"]),
        ("completed", outcomes["completed"]),
        ("pruned", outcomes["pruned"]),
        ("rejected over budget", verdicts["over_budget"]),
        ("invalid", verdicts["invalid"]),
    ]:
        assert f"<li><span class=n>{n}</span><span class=what>{label}</span></li>" in b453_html
    assert "Dry run" in b453_html
    config_yaml = b453.load().user_attrs["config_yaml"]
    assert "id=study-config" in b453_html and html.escape(config_yaml) in b453_html
    best = study.best_trial
    assert f"(trial {best.number}): val accuracy <b>{best.value:.2%}</b>" in b453_html


def test_accuracy_figure_budget_front_paper_and_rejected_strip(b453: Made, b453_html: str) -> None:
    study = b453.load()
    fig = _by_slug(_sections(b453))["accuracy-vs-params"].figure
    assert fig is not None
    traces = {t.name.split(" (")[0]: t for t in fig.data if t.name}
    # Budget: a dashed vertical line across both rows, labelled.
    assert any(s.type == "line" and s.x0 == s.x1 == 5_000_000 for s in fig.layout.shapes)
    assert "budget 5,000,000" in b453_html
    # Every trained trial is drawn; pruned ones at their last reported accuracy.
    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.user_attrs.get("outcome") == "completed"]
    pruned = [t for t in trials if t.user_attrs.get("outcome") == "pruned"]
    assert sorted(traces["completed"].y) == sorted(t.value for t in completed)  # type: ignore[type-var]
    assert sorted(traces["pruned"].y) == sorted(t.user_attrs["curve"][-1] for t in pruned)
    assert sorted(traces["pruned"].x) == sorted(t.user_attrs["params"] for t in pruned)
    # The front: a non-decreasing step line ending at the budget, through the best trial.
    front = traces["front: best accuracy at or below each size"]
    assert front.line.shape == "hv" and list(front.y) == sorted(front.y)
    assert front.x[-1] == 5_000_000 and max(front.y) == study.best_value
    # Rejected configurations: their own row; invalid ones counted in the legend.
    over = [t for t in trials if t.user_attrs.get("verdict") == "over_budget"]
    invalid = [t for t in trials if t.user_attrs.get("verdict") == "invalid"]
    assert over and invalid, "the dry run should reject configurations of both kinds"
    strip = traces["rejected over budget"]
    assert strip.yaxis == "y2" and sorted(strip.x) == sorted(t.user_attrs["params"] for t in over)
    assert f"rejected over budget ({len(over)})" in b453_html
    assert f"rejected invalid ({len(invalid)}, no parameter count)" in b453_html
    # The paper's points, marked as test accuracies selected on the test set.
    paper = [t for t in fig.data if t.legendgroup == "paper"]
    assert [(t.x[0], t.y[0]) for t in paper] == [
        (4_903_242, 0.9466),
        (4_992_586, 0.9564),
        (4_992_586, 0.9595),
    ]
    assert all("TEST accuracy" in t.hovertemplate and "test set" in t.hovertemplate for t in paper)
    assert len(PAPER_POINTS) == 3
    for text in ("ResNet10: 94.66%", "200 epochs: 95.64%", "600 epochs: 95.95%"):
        assert text in b453_html
    assert "TEST accuracy, selected on the test set" in b453_html
    # Hover: trial number, arch, params, accuracy, epochs.
    template = traces["completed"].hovertemplate
    assert all(k in template for k in ("trial", "params", "val accuracy", "epochs"))
    number, arch, params, *_ = traces["completed"].customdata[0]
    assert study.trials[number].user_attrs["arch"] == arch
    assert params == f"{study.trials[number].user_attrs['params']:,}"


def test_history_importances_parallel_curves_timeline(b453: Made) -> None:
    study = b453.load()
    sections = _by_slug(_sections(b453, top=5))
    history = sections["history"].figure
    assert history is not None
    best = next(t for t in history.data if t.name == "best so far")
    assert max(best.y) == study.best_value and list(best.y) == sorted(best.y)
    # Importances: a figure (enough completed trials) or a note saying why not, never an error.
    imp = sections["importances"]
    assert (imp.figure is None) != (imp.note is None)
    if imp.figure is not None:
        assert abs(sum(imp.figure.data[0].x) - 1) < 1e-6
    # Parallel coordinates: conditional per-layer params ('n/a') and categorical pool values.
    par = sections["parallel-coordinates"].figure
    assert par is not None
    dims = {d.label: d for d in par.data[0].dimensions}
    trained = [t for t in study.trials if t.user_attrs.get("outcome") in ("completed", "pruned")]
    varying = {
        name
        for name in {n for t in trained for n in t.params}
        if len({repr(t.params.get(name)) for t in trained}) > 1
    }
    arch = {n for n in varying if n not in TRAINING_KEYS}
    assert set(dims) == arch | {"params (M)", "val accuracy"}  # no recipe, no constant axis
    assert len(arch) >= 5
    layers = {t.params["layers"] for t in trained}
    if len(layers) > 1:
        assert any("n/a" in (d.ticktext or ()) for d in dims.values())
    pools = {str(t.params["pool"]) for t in trained}
    if len(pools) > 1:  # "global" is a category among the numbers, sorted after them
        assert list(dims["pool"].ticktext) == sorted(
            pools, key=lambda p: (p == "global", int(p) if p.isdigit() else 0)
        )
        assert set(dims["pool"].values) == set(range(len(pools)))
    # Learning curves of the top 5 trials; the table lists the same 5.
    curves = sections["learning-curves"].figure
    assert curves is not None and 1 <= len(curves.data) <= 5
    table = sections["top-trials"].body_html
    assert table is not None
    assert table.count("<tr class=main>") == 5
    # Timeline: one row per worker, bars from start to end.
    timeline = sections["timeline"].figure
    assert timeline is not None
    workers = {y for t in timeline.data for y in t.y}
    assert workers == {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2
    assert timeline.layout.xaxis.type == "date"


def test_top_table_has_parseable_retrain_commands(b453: Made, b453_html: str) -> None:
    study = b453.load()
    config = load_config(b453.name)
    table = b453_html[b453_html.index("id=top-trials") :]
    ranks = re.findall(r"<tr class=main><td>(\d+)</td><td>(\d+)</td>", table)
    commands = [
        html.unescape(c) for c in re.findall(r"<code class=train-command>(.*?)</code>", table)
    ]
    assert len(ranks) == len(commands) == 10
    assert [int(r) for r, _ in ranks] == list(range(1, 11))
    parser = build_parser()
    for (_, number), command in zip(ranks, commands, strict=True):
        trial = study.trials[int(number)]
        argv = shlex.split(command)
        assert argv[:2] == ["optuna-search", "train"]
        args = parser.parse_args(argv[1:])
        assert args.blocks == trial.user_attrs["spec"]["blocks"]
        assert args.channels == trial.user_attrs["spec"]["channels"]
        assert command == train_command(
            trial.user_attrs["spec"],
            trial.user_attrs["recipe"],
            data=dataclasses.asdict(config.data),
        )
    # Completed trials first, by accuracy; then pruned ones.
    outcomes = [study.trials[int(n)].user_attrs["outcome"] for _, n in ranks]
    assert outcomes == sorted(outcomes, key=lambda o: o != "completed")
    accuracies = [study.trials[int(n)].value for _, n in ranks if study.trials[int(n)].value]
    done = [a for a, o in zip(accuracies, outcomes, strict=False) if o == "completed"]
    assert done == sorted(done, reverse=True)  # type: ignore[type-var]


def test_retrain_result_shows_as_test_accuracy(b453: Made, tmp_path: Path) -> None:
    study = b453.load()
    best = study.best_trial
    record = {"epochs": 600, "val_accuracy": 0.95, "test_accuracy": 0.9612, "seconds": 1.0}
    copy = optuna.create_study(
        study_name="copy", direction="maximize", storage=f"sqlite:///{tmp_path / 'c.db'}"
    )
    for k, v in study.user_attrs.items():
        copy.set_user_attr(k, v)
    for t in study.get_trials():
        if t.number == best.number:
            t.set_user_attr("retrain", record)
        copy.add_trial(t)
    [path] = write_report(copy, load_config(b453.name), tmp_path / "r.html")
    text = path.read_text()
    assert "96.12% (600 epochs)" in text and "test accuracy <b>96.12%</b>" in text


# ---------------------------------------------------------------------------------------------
# Other studies and edge cases


def test_smoke_study_really_trained(smoke: Made, tmp_path: Path) -> None:
    study = smoke.load()
    [path] = write_report(study, load_config("smoke"), tmp_path / "smoke.html", top=3)
    text = path.read_text()
    assert all(_has_id(text, div_id) for div_id in FIGURE_IDS)
    # Synthetic data: the paper's CIFAR-10 test accuracies are not put beside it.
    assert "paper&#x27;s reference points are left out" in text
    sections = _by_slug(_sections(smoke, top=3))
    fig = sections["accuracy-vs-params"].figure
    assert fig is not None and not [t for t in fig.data if t.legendgroup == "paper"]
    assert any(s.x0 == 30_000 for s in fig.layout.shapes)  # this study's own budget
    curves = sections["learning-curves"].figure
    assert curves is not None
    assert all(len(t.y) >= 1 for t in curves.data)


def test_two_objective_study_shows_its_pareto_front(pareto: Made, tmp_path: Path) -> None:
    study = pareto.load()
    [path] = write_report(study, load_config(pareto.name), tmp_path / "p.html")
    text = path.read_text()
    assert "val_accuracy (maximize), params (minimize)" in text
    assert f"Pareto front: {len(study.best_trials)} trials" in text
    sections = _by_slug(_sections(pareto))
    fig = sections["accuracy-vs-params"].figure
    assert fig is not None
    front = next(t for t in fig.data if t.name and t.name.startswith("Pareto front"))
    expected = sorted((t.values[1], t.values[0]) for t in study.best_trials)
    assert list(zip(front.x[:-1], front.y[:-1], strict=True)) == expected
    history = sections["history"].figure
    assert history is not None
    completed = next(t for t in history.data if t.name.startswith("completed"))
    assert sorted(completed.y) == sorted(
        t.values[0] for t in study.trials if t.values and t.state == TrialState.COMPLETE
    )
    assert "reaching the Pareto front" in sections["importances"].caption


def _edge_study(url: str) -> optuna.Study:
    """Only rejected configurations, plus a failed, a running and a waiting trial."""
    study = optuna.create_study(study_name="b453-space", direction="maximize", storage=url)
    study.set_user_attr("max_params", 5_000_000)
    dists = {"layers": IntDistribution(2, 4), "pool": CategoricalDistribution([1, 4, "global"])}
    for i in range(3):
        study.add_trial(
            create_trial(
                state=TrialState.PRUNED,
                params={"layers": 3, "pool": "global"},
                distributions=dists,
                user_attrs={
                    "arch": f"ResNet-{i}",
                    "params": 6_000_000 + i * 1_000_000,
                    "macs": 10**9,
                    "verdict": "over_budget",
                    "outcome": "rejected",
                    "reason": "over budget",
                    "worker": "gpu-host/w0/gpu0",
                },
            )
        )
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"layers": 4, "pool": 4},
            distributions=dists,
            user_attrs={
                "arch": "invalid",
                "params": None,
                "macs": None,
                "verdict": "invalid",
                "outcome": "rejected",
                "host": "gpu-host",
            },
        )
    )
    study.add_trial(create_trial(state=TrialState.FAIL, params={}, distributions={}))
    running = study.ask()
    running.set_user_attr("worker", "gpu-host/w1/gpu1")
    study.enqueue_trial({"layers": 2, "pool": 4})
    return study


def test_all_rejected_with_running_waiting_and_failed_trials(tmp_path: Path) -> None:
    study = _edge_study(f"sqlite:///{tmp_path / 'edge.db'}")
    [path] = write_report(study, load_config("b453-space"), tmp_path / "edge.html")
    text = path.read_text()
    assert "No trial has trained yet" in text
    for label, n in [("rejected over budget", 3), ("invalid", 1), ("failed", 1), ("running", 1)]:
        assert f"<span class=n>{n}</span><span class=what>{label}</span>" in text
    assert "rejected over budget (3)" in text and "rejected invalid (1, no parameter count)" in text
    sections = _by_slug(
        build_sections(
            study,
            load_config("b453-space"),
            read_rows(study),
            top=10,
            now=datetime.datetime.now(),
        )
    )
    for slug in ("history", "importances", "parallel-coordinates", "learning-curves"):
        assert sections[slug].figure is None and sections[slug].note, slug
    assert sections["top-trials"].note == "No trial has trained yet."
    timeline = sections["timeline"].figure
    assert timeline is not None
    rows = {t.name.split(" ")[0]: set(t.y) for t in timeline.data}
    assert rows["running"] == {"gpu-host/w1/gpu1"}
    assert rows["rejected"] == {"gpu-host/w0/gpu0", "gpu-host"}
    assert rows["failed"] == {"unknown"}


def test_empty_study_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(study_name="smoke", direction="maximize", storage=url)
    out = tmp_path / "empty.html"
    proc = run_cli("report", "--study", "smoke", "--storage", url, "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "No trial has trained yet (the study holds no trial)." in text
    assert "No trial has completed yet." in text
    assert "Plotly.newPlot" not in text  # every figure is a note
    assert all(_has_id(text, div_id) for div_id in FIGURE_IDS)


def test_empty_two_objective_study(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    [path] = write_report(study, load_config("pareto-wide"), tmp_path / "sub" / "e.html")
    assert "No trial has completed yet." in path.read_text()


def test_text_from_the_study_is_escaped(b453: Made, tmp_path: Path) -> None:
    config = dataclasses.replace(
        load_config(b453.name), description="<script>alert('x')</script> & more"
    )
    [path] = write_report(b453.load(), config, tmp_path / "r.html")
    text = path.read_text()
    assert "<script>alert(" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text


def test_missing_study_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    out = tmp_path / "r.html"
    proc = run_cli("report", "--study", "smoke", "--storage", url, "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no study 'smoke'" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_output_folder_for_html_is_a_usage_error(b453: Made, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        write_report(b453.load(), load_config(b453.name), tmp_path)


def test_pareto_steps() -> None:
    assert pareto_steps([]) == []
    assert pareto_steps([(5, 0.5), (5, 0.6), (1, 0.1), (9, 0.55)]) == [(1, 0.1), (5, 0.6)]


# ---------------------------------------------------------------------------------------------
# PNG export (plotly's kaleido, which drives a Chromium: Debian's package here and in CI)


def _png_export_available() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return bool(os.environ.get("BROWSER_PATH") or shutil.which("chromium"))


def test_png_export_writes_one_real_png_per_figure(b453: Made, tmp_path: Path) -> None:
    if not _png_export_available():
        message = "PNG export needs: pip install kaleido; apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / "pngs"
    proc = run_cli(
        "report",
        "--study",
        b453.name,
        "--storage",
        b453.url,
        "-o",
        str(out),
        "--format",
        "png",
        cwd=b453.folder,
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    drawn = [f"{i:02d}-{s.slug}.png" for i, s in enumerate(_sections(b453), 1) if s.figure]
    assert names == drawn
    assert {"01-accuracy-vs-params.png", "06-timeline.png"} <= set(names)
    assert proc.stdout.splitlines() == [f"wrote {out / n}" for n in names]
    for name in names:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        width = int.from_bytes(data[16:20], "big")
        assert width >= 1200 and len(data) > 5_000, name


def test_png_export_without_a_browser_is_a_clean_error(
    b453: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process: `python -m search.cli` runs the CLI as __main__, whose UsageError is another
    # class than search.cli.UsageError, so a subprocess would show a traceback (see report).
    pytest.importorskip("kaleido", reason="without kaleido the error names kaleido instead")
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-browser"))
    out = tmp_path / "pngs"
    code = main(
        ["report", "--study", b453.name, "--storage", b453.url, "-o", str(out), "--format", "png"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("optuna-search report: error: --format png")
    assert "kaleido" in err and "chromium" in err and "--format html" in err
    assert not out.exists()


def test_png_export_without_kaleido_names_the_fix(
    b453: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kaleido", None)  # import kaleido -> ImportError
    with pytest.raises(UsageError, match="needs kaleido: pip install kaleido"):
        write_report(b453.load(), load_config(b453.name), tmp_path / "p", fmt="png")
    assert not (tmp_path / "p").exists()
