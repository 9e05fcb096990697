"""What a person sees, in headless Chromium: the HTML report and optuna-dashboard render with
no JavaScript error and fetch nothing from the network; screenshots are kept for a look.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the ``playwright`` package,
which drives that Chromium (no browser is downloaded). Screenshots go to
``$OPTUNA_SEARCH_SCREENSHOTS`` (default: pytest's temporary folder).
"""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import optuna
import pytest

from search.config import load_config
from search.report import build_sections, read_rows, write_report
from tests.conftest import free_port, run_cli, start_dashboard, stop

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Route, ViewportSize

CHROMIUM_FLAGS = [
    # Playwright adds --headless and a new empty --user-data-dir (launch_persistent_context).
    "--no-sandbox",  # root in containers and CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


def _missing(message: str) -> NoReturn:
    """CI must have everything; a developer's machine may skip, with the command to run."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        _missing("no Chromium: apt-get install -y chromium (Debian's package)")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A persistent Chromium context with a new, empty profile."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("no playwright: pip install playwright (it drives Debian's chromium)")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("OPTUNA_SEARCH_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watched:
    """A page with its JavaScript errors and its requests outside ``allowed`` recorded (and
    refused, so that a test never depends on the network)."""

    def __init__(self, context: BrowserContext, *, allowed: tuple[str, ...]) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on(
            "console",
            lambda m: self.errors.append(f"console.error: {m.text}") if m.type == "error" else None,
        )
        self.page.route("**/*", self._route)
        self._allowed = allowed

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self._allowed):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def close(self) -> None:
        self.page.close()


def _study_of(tmp: Path, name: str, *args: str) -> tuple[str, Path]:
    url = f"sqlite:///{tmp / (name + '.db')}"
    proc = run_cli("run", "--study", name, "--storage", url, *args, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return url, tmp


# ---------------------------------------------------------------------------------------------
# The report


def test_report_renders_without_errors(
    browser: BrowserContext, screenshots: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("report")
    url, _ = _study_of(tmp, "b453-space", "--workers", "2", "--n-trials", "24", "--dry-run", "0.02")
    study = optuna.load_study(study_name="b453-space", storage=url)
    config = load_config("b453-space")
    [path] = write_report(study, config, tmp / "report.html")
    rows = read_rows(study)
    sections = build_sections(study, config, rows, top=10, now=datetime.datetime.now())
    plotted = [s.slug for s in sections if s.figure is not None]

    watched = Watched(browser, allowed=("file://",))
    page = watched.page
    page.goto(path.as_uri())
    # Rendered: every figure's div holds plotly's SVG (parcoords draws into a canvas too).
    page.wait_for_function(
        """(ids) => ids.every(id => {
            const div = document.getElementById('fig-' + id);
            return div && div.querySelector('svg.main-svg') && div._fullLayout;
        })""",
        arg=plotted,
        timeout=60_000,
    )
    page.wait_for_timeout(500)  # let the responsive resize settle before the screenshot
    sizes = page.evaluate(
        """(ids) => ids.map(id => {
            const r = document.getElementById('fig-' + id).getBoundingClientRect();
            return [id, Math.round(r.width), Math.round(r.height)];
        })""",
        plotted,
    )
    for slug, width, height in sizes:
        assert width >= 900 and height >= 250, (slug, width, height)  # not cramped
    assert page.locator("table#top-trials tr.main").count() == 10
    assert page.locator("code.train-command").count() == 10
    assert page.title() == "optuna-search report: b453-space"
    page.screenshot(path=str(screenshots / "report-top.png"))
    page.screenshot(path=str(screenshots / "report-full.png"), full_page=True)
    first = page.locator("#section-accuracy-vs-params")
    first.screenshot(path=str(screenshots / "report-accuracy-vs-params.png"))
    # Hovering a trained trial's point shows its number, architecture, size and accuracy.
    hover = page.evaluate(
        """() => {
            const div = document.getElementById('fig-accuracy-vs-params');
            const i = div.data.findIndex(t => (t.name || '').startsWith('completed'));
            Plotly.Fx.hover(div, [{curveNumber: i, pointNumber: 0}]);
            return div.querySelector('.hoverlayer').textContent;
        }"""
    )
    assert "trial" in hover and "params" in hover and "val accuracy" in hover, hover
    watched.close()
    assert watched.errors == []
    assert watched.outside == []  # self-contained: nothing fetched, not even a font


# ---------------------------------------------------------------------------------------------
# optuna-dashboard, started by the project's CLI


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``optuna-search dashboard`` on a smoke study, as a subprocess; yields its base URL."""
    tmp = tmp_path_factory.mktemp("dashboard")
    url, _ = _study_of(tmp, "smoke")
    port = free_port()
    proc = start_dashboard(url, tmp, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_dashboard_shows_the_study(
    browser: BrowserContext, screenshots: Path, dashboard: str
) -> None:
    watched = Watched(browser, allowed=(dashboard + "/",))
    page = watched.page
    page.goto(dashboard + "/dashboard")
    page.get_by_text("smoke", exact=False).first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert "1. smoke" in page.inner_text("body")
    page.screenshot(path=str(screenshots / "dashboard-studies.png"))

    page.get_by_text("smoke").first.click()
    page.wait_for_url("**/dashboard/studies/*", timeout=30_000)
    page.get_by_text("Best Trial").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length > 0",
        timeout=30_000,
    )
    page.wait_for_timeout(1000)
    body = page.inner_text("body")
    assert "smoke (id=" in body and "val_accuracy" in body and "Best Trial" in body
    page.screenshot(path=str(screenshots / "dashboard-study.png"))

    page.goto(page.url.rstrip("/") + "/trials")
    page.get_by_text("Trial 0").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    body = page.inner_text("body")
    assert "ResNet4-B1-C16-Pglobal-stem8" in body  # the trials' user attrs (arch) are shown
    page.screenshot(path=str(screenshots / "dashboard-trials.png"))
    watched.close()
    assert watched.errors == []
    assert watched.outside == []
