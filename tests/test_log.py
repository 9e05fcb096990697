"""One format for every line: date, time, the worker's name, the message; -v, -q and
--log-file as Optuna's CLI has them; whole lines when several workers write at once."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from search import log
from search.retry import backoff
from tests.conftest import run_cli

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+: \S")
RESULTS = ("best:", "Pareto front:", "no completed feasible trial yet")
"""Lines that are results, printed as they are (as `best` prints its table)."""


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    log.configure(verbosity=0, stream=out)
    yield out
    log.configure(verbosity=0)


def test_a_retry_is_a_line_like_any_other(stream: io.StringIO) -> None:
    log.set_worker("box/w1")
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 2:
            raise OSError("lost")
        return 7

    assert backoff(flaky, worth_retrying=lambda e: True, what="reading") == 7
    [line] = stream.getvalue().splitlines()
    assert LINE.match(line) and " box/w1: warning: reading failed (lost)" in line


def test_quiet_and_verbose(stream: io.StringIO) -> None:
    log.configure(verbosity=-1, stream=stream)
    logging.getLogger("optuna_search.worker").info("hidden")
    logging.getLogger("optuna_search.worker").warning("shown")
    log.configure(verbosity=1, stream=stream)
    logging.getLogger("optuna_search.worker").debug("debug shown")
    text = stream.getvalue()
    assert "hidden" not in text and "warning: shown" in text and "debug: debug shown" in text


@pytest.mark.slow
def test_workers_write_whole_lines_to_the_terminal_and_the_log_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["--log-file", "run.log", "run", "--study", "smoke", "--storage", url]
    proc = run_cli(*args, "--workers", "3", "--dry-run", "0.05", "--n-trials", "24", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if not line.startswith(RESULTS)]
    assert len(lines) > 50
    for line in lines:
        assert LINE.match(line), line
    workers = {line.split()[2] for line in lines if "trial" in line}
    assert {w.split("/")[-1] for w in workers} >= {"w0:", "w1:", "w2:"}
    written = (tmp_path / "run.log").read_text().splitlines()
    assert sorted(written) == sorted(lines)  # the same lines, whole, in the file


def test_quiet_run_prints_only_its_result(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    proc = run_cli(
        "run", "-q", "--study", "smoke", "--storage", url, "--dry-run", "0", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line] == [
        line for line in proc.stdout.splitlines() if line.startswith(RESULTS)
    ]
