"""``optuna-search dashboard``: optuna-dashboard on a real study's storage, read over HTTP."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, run_cli, start_dashboard, stop


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A smoke study run for real, and the dashboard serving it: (storage URL, port)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'study.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    proc = run_cli("run", "--study", "smoke", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    port = free_port()
    dashboard = start_dashboard(url, tmp_path, port)
    try:
        yield url, port
    finally:
        stop(dashboard)


def test_dashboard_serves_the_study_its_trials_and_artifacts(served: tuple[str, int]) -> None:
    _, port = served
    base = f"http://127.0.0.1:{port}"
    studies = json.loads(get(f"{base}/api/studies"))["study_summaries"]
    smoke = next(s for s in studies if s["study_name"] == "smoke")
    detail = json.loads(get(f"{base}/api/studies/{smoke['study_id']}"))
    assert detail["objective_names"] == ["val_accuracy"]
    assert "## smoke" in detail["note"]["body"] and "```yaml" in detail["note"]["body"]
    trials = detail["trials"]
    rejected = [
        t
        for t in trials
        if any(a["key"] == "verdict" and a["value"] != "feasible" for a in t["user_attrs"])
    ]
    assert rejected, "the rejected configurations show their verdict as user attrs"
    with_files = [t for t in trials if t["artifacts"]]
    assert with_files
    completed = next(t for t in with_files if t["state"] == "Complete")
    names = {a["filename"]: a for a in completed["artifacts"]}
    assert set(names) == {"learning_curve.json", "model.pt"}
    curve = names["learning_curve.json"]
    body = json.loads(
        get(f"{base}/artifacts/{smoke['study_id']}/{completed['trial_id']}/{curve['artifact_id']}")
    )
    assert body["trial"] == completed["number"] and len(body["val_accuracy"]) == len(body["epoch"])
    weights = get(
        f"{base}/artifacts/{smoke['study_id']}/{completed['trial_id']}/"
        f"{names['model.pt']['artifact_id']}"
    )
    assert weights[:2] == b"PK"  # a torch.save zip archive
    page = get(f"{base}/dashboard/studies/{smoke['study_id']}")
    assert b"<html" in page.lower()


def test_dashboard_binds_to_loopback_and_reports_a_busy_port(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = run_cli(
            "dashboard",
            "--storage",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--port",
            str(port),
            cwd=tmp_path,
        )
    assert proc.returncode == 2
    assert "cannot listen on 127.0.0.1" in proc.stderr and "--port" in proc.stderr


def test_dashboard_restarts_on_the_port_it_has_just_served(tmp_path: Path) -> None:
    """The served connection leaves the port in TIME_WAIT; the pre-bind probe must allow that
    as the server does (SO_REUSEADDR), or a restart within a minute is refused."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    proc = run_cli("run", "--study", "smoke", "--storage", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    port = free_port()
    for _ in range(2):
        dashboard = start_dashboard(url, tmp_path, port)
        try:
            assert json.loads(get(f"http://127.0.0.1:{port}/api/studies"))["study_summaries"]
        finally:
            stop(dashboard)
