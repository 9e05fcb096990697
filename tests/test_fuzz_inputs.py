"""Any input, mutated at random: exit status 0 or 2, never a traceback, never a hang, and
nothing written when the answer is 2.

Hypothesis mutates the shipped study configs (drops, retypes, renames and duplicates keys,
puts extreme numbers and unicode in) and draws flag lists for the instant commands; each
example runs the real command line in-process, with a time limit.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.cli import main
from search.config import PROJECT_CONFIGS

SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(PROJECT_CONFIGS.glob("*.yaml"))}
WEIRD: st.SearchStrategy[Any] = st.sampled_from(
    [None, -1, 0, 1, 3.5, -2.0, 1e308, float("nan"), True, "x", "ünïcödé ✓", [], {}, [1, "a"],
     2**70, -(2**63), {"int": [1, 10**20]}, {"choice": []}, {"float": [1, 0]}, "global", "1e5"]
)  # fmt: skip
LIMIT_SECONDS = 20
"""A hang detector, not a timing: these commands answer in about a second."""


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    """A shipped config as YAML text, changed in one to four places."""
    tree = copy.deepcopy(SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))])
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(tree))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(tree, path), path[-1]
        action = draw(st.sampled_from(["drop", "retype", "rename"]))
        if action == "drop":
            del parent[key]
        elif action == "retype":
            parent[key] = draw(WEIRD)
        elif isinstance(parent, dict):
            parent[key + draw(st.sampled_from(["x", "_", "é", "s"]))] = parent.pop(key)
    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)
    if draw(st.booleans()):  # a key given twice
        lines = text.splitlines()
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        lines.insert(i, lines[i]) if lines else None
        text = "\n".join(lines) + "\n"
    return text


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        time_limit(LIMIT_SECONDS),
    ):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own errors and --help
            code = int(e.code or 0)
    return code, err.getvalue()


def _snapshot(folder: Path) -> set[tuple[str, int]]:
    return {(str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*")}


def _check(argv: list[str], folder: Path) -> None:
    before = _snapshot(folder)
    code, err = _run(argv)
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert _snapshot(folder) == before, "written although refused"


@pytest.fixture
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("fuzz")
    cwd = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(cwd)


@pytest.mark.slow
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=mutated_config(), command=st.sampled_from(["validate", "space"]))
def test_mutated_configs(text: str, command: str, folder: Path) -> None:
    config = folder / "fuzzed.yaml"
    config.write_text(text, encoding="utf-8")
    argv = [command, "--study", str(config)] + (["--sample", "5"] if command == "space" else [])
    _check(argv, folder)


FLAG_VALUES = st.sampled_from(
    ["0", "-1", "1", "4,5,3", "1,,2", "nan", "inf", "1e400", "99999999999999999999", "global",
     "", "ünï", "3.5", "64,128,256", "1000000000", "--json", "x"]
)  # fmt: skip
PARAMS_FLAGS = st.sampled_from(
    ["--blocks", "--channels", "--strides", "--kernel", "--shortcut-kernel", "--pool",
     "--stem-channels", "--num-classes", "--max-params", "--arch", "--json", "--paper"]
)  # fmt: skip


@pytest.mark.slow
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flags=st.lists(st.tuples(PARAMS_FLAGS, FLAG_VALUES), max_size=6))
def test_random_params_flags(flags: list[tuple[str, str]], folder: Path) -> None:
    argv = ["params"] + [item for pair in flags for item in pair]
    _check(argv, folder)
