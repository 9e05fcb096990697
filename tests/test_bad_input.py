"""Bad input, kind by kind: one line on stderr naming the problem and the fix, exit status 2,
no traceback, and nothing created or changed (the folder's files and the database's studies
compared before and after).

Each case is the real command line in a fresh folder; the storage is a SQLite file there
unless the case names another.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from search.config import PROJECT_CONFIGS
from tests.conftest import run_cli

SMOKE = (PROJECT_CONFIGS / "smoke.yaml").read_text()


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file with its size and time; the database only by name (SQLite checkpoints its
    write-ahead log into it when a reader closes it: its studies are compared instead)."""
    return {
        str(p.relative_to(folder)): (0, 0)
        if p.name.startswith("study.db")
        else (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def _studies(db: Path) -> list[str] | None:
    if not db.exists():
        return None
    return sorted(optuna.get_all_study_names(storage=f"sqlite:///{db}"))


def _cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=env, timeout=120)


def assert_refused(
    args: list[str], cwd: Path, fragment: str, env: dict[str, str] | None = None
) -> str:
    """Run ``optuna-search ARGS`` in ``cwd``: exit 2, one stderr line holding ``fragment``,
    no traceback, nothing created or changed in ``cwd`` or its ``study.db``."""
    before, studies = _snapshot(cwd), _studies(cwd / "study.db")
    proc = _cli(args, cwd, env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert _snapshot(cwd) == before, "something was written"
    assert _studies(cwd / "study.db") == studies
    return lines[0]


def _config(folder: Path, text: str, name: str = "bad.yaml") -> str:
    (folder / name).write_text(text)
    return name


def _deep(levels: int) -> str:
    return "space: " + "{a: " * levels + "1" + "}" * levels + "\n"


def _made_study(folder: Path) -> str:
    """A small dry-run study in ``folder/study.db``; returns its URL."""
    url = f"sqlite:///{folder / 'study.db'}"
    proc = _cli(["run", "--study", "smoke", "--storage", url, "--dry-run", "0"], folder)
    assert proc.returncode == 0, proc.stderr
    return url


# ---------------------------------------------------------------------------------------------
# Study configs: validate and run refuse them, before any storage is touched

CONFIGS: list[tuple[str, Callable[[], str], str, str]] = [
    (
        "stem-mixed-choice",
        lambda: SMOKE.replace("    stem_channels: 8\n", "    stem_channels: {choice: [8, wide]}\n"),
        "stem_channels",
        "positive integers",
    ),
    (
        "classes-mixed-choice",
        lambda: SMOKE.replace(
            "    stem_channels: 8\n", "    stem_channels: 8\n    num_classes: {choice: [10, ten]}\n"
        ),
        "num_classes",
        "positive integers",
    ),
    ("deep-nesting", lambda: _deep(3000), "(file)", "nested too deeply"),
    (
        "huge-layers",
        lambda: SMOKE.replace("layers: {int: [1, 2]}", "layers: {int: [1, 1000000000000]}"),
        "layers",
        "supported",
    ),
    (
        "huge-blocks",
        lambda: SMOKE.replace("blocks: {int: [1, 2]}", "blocks: {int: [1, 100000000000000000000]}"),
        "blocks",
        "supported",
    ),
    ("seed-negative", lambda: SMOKE.replace("seed: 0", "seed: -1"), "sampler.seed", "2**32"),
    ("seed-too-big", lambda: SMOKE.replace("seed: 0", "seed: 4294967296"), "sampler.seed", "2**32"),
    (
        "pool-float",
        lambda: SMOKE.replace("pool: {choice: [2, global]}", "pool: 3.5"),
        "pool",
        "pool size",
    ),
    (
        "pool-bool",
        lambda: SMOKE.replace("pool: {choice: [2, global]}", "pool: true"),
        "pool",
        "pool size",
    ),
    (
        "pool-negative",
        lambda: SMOKE.replace("pool: {choice: [2, global]}", "pool: -2"),
        "pool",
        "pool size",
    ),
    (
        "duplicate-key",
        lambda: SMOKE.replace("trials: 4 ", "trials: 4\ntrials: 5 "),
        "line",
        "duplicate key",
    ),
    ("name-dotdot", lambda: "name: '..'\n" + SMOKE, "name", "letters"),
    ("timeout-huge", lambda: SMOKE + "timeout: 10000000000000000\n", "timeout", "year"),
]


@pytest.mark.parametrize(("case", "text", "key", "fragment"), CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_configs(
    case: str, text: Callable[[], str], key: str, fragment: str, command: str, tmp_path: Path
) -> None:
    name = _config(tmp_path, text())
    args = (
        ["validate", "--study", name]
        if command == "validate"
        else [
            "run",
            "--study",
            name,
            "--storage",
            f"sqlite:///{tmp_path / 'study.db'}",
            "--dry-run",
            "0",
        ]
    )
    line = assert_refused(args, tmp_path, fragment)
    assert key in line


def test_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin.yaml").write_bytes(SMOKE.replace("Smoke", "Sm\xf6ke").encode("latin-1"))
    assert_refused(["validate", "--study", "latin.yaml"], tmp_path, "UTF-8")


@pytest.mark.parametrize("key", ["artifacts", "checkpoints"])
def test_output_folders_of_a_config_under_a_file(key: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    name = _config(tmp_path, SMOKE + f"{key}: afile/sub\n")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert_refused(["run", "--study", name, "--storage", url, "--dry-run", "0"], tmp_path, key)


# ---------------------------------------------------------------------------------------------
# Flags

FLAGS = [
    ("dry-run-nan", ["run", "--study", "smoke", "--dry-run", "nan"], "--dry-run"),
    ("dry-run-inf", ["run", "--study", "smoke", "--dry-run", "inf"], "--dry-run"),
    ("dry-run-negative", ["run", "--study", "smoke", "--dry-run", "-1"], "--dry-run"),
    (
        "device-nonsense",
        ["run", "--study", "smoke", "--dry-run", "1", "--device", "nonsense"],
        "device",
    ),
    (
        "timeout-huge",
        [
            "run",
            "--study",
            "smoke",
            "--dry-run",
            "1",
            "--timeout",
            "10000000000000000",
            "--workers",
            "2",
        ],
        "year",
    ),
    (
        "timeout-scientific",
        ["run", "--study", "smoke", "--dry-run", "1", "--timeout", "1e+16"],
        "duration",
    ),
    (
        "storage-empty",
        ["run", "--study", "smoke", "--dry-run", "1", "--storage", ""],
        "--storage is empty",
    ),
    ("port-high", ["dashboard", "--port", "70000"], "--port"),
    ("port-negative", ["dashboard", "--port", "-1"], "--port"),
    ("top-negative", ["report", "--study", "smoke", "-o", "r.html", "--top", "-1"], "--top"),
    (
        "n-trials-zero",
        ["run", "--study", "smoke", "--dry-run", "1", "--n-trials", "0"],
        "--n-trials",
    ),
]


@pytest.mark.parametrize(("case", "args", "fragment"), FLAGS, ids=[c[0] for c in FLAGS])
def test_bad_flags(case: str, args: list[str], fragment: str, tmp_path: Path) -> None:
    if "--storage" not in args and args[0] != "dashboard":
        args = [*args, "--storage", f"sqlite:///{tmp_path / 'study.db'}"]
    assert_refused(args, tmp_path, fragment)


def test_dashboard_artifact_dir_under_a_file(tmp_path: Path) -> None:
    url = _made_study(tmp_path)
    (tmp_path / "afile").write_text("x")
    args = ["dashboard", "--storage", url, "--artifact-dir", "afile/art", "--port", "1"]
    assert_refused(args, tmp_path, "--artifact-dir")


# ---------------------------------------------------------------------------------------------
# Storage URLs


def test_bad_storage_urls(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "text.db").write_text("not a database")
    cases = [
        ("mysql://u@localhost/optuna", "driver"),
        ("postgresql+asyncpg://u@localhost/optuna", "driver"),
        ("postgresql+psycopg_async://u@localhost/optuna", "asyncio"),
        ("sqlite:////proc/study.db", "/proc"),
        (f"sqlite:///{tmp_path}/afile/study.db", "not a folder"),
        (f"sqlite:///{tmp_path}/adir", "is a folder"),
        (f"sqlite:///{tmp_path}/text.db", "not a SQLite database"),
        ("oracle://u@h/db", "unsupported"),
    ]
    for url, fragment in cases:
        assert_refused(
            ["run", "--study", "smoke", "--storage", url, "--dry-run", "0"], tmp_path, fragment
        )


def test_a_bad_storage_variable_is_named(tmp_path: Path) -> None:
    line = assert_refused(
        ["run", "--study", "smoke", "--dry-run", "0"],
        tmp_path,
        "$OPTUNA_SEARCH_STORAGE",
        env={"OPTUNA_SEARCH_STORAGE": "mysql://u@h/db"},
    )
    assert "driver" in line


def test_a_bare_storage_path_is_taken_literally(tmp_path: Path) -> None:
    for name in ("weird?name.db", "x%41y.db"):
        proc = _cli(["run", "--study", "smoke", "--storage", name, "--dry-run", "0"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / name).is_file()
    assert not (tmp_path / "weird").exists() and not (tmp_path / "xAy.db").exists()


# ---------------------------------------------------------------------------------------------
# Output paths


def test_bad_output_paths(tmp_path: Path) -> None:
    url = _made_study(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    for command in ("export", "report"):
        for target, fragment in (
            ("adir", "is a folder"),
            ("afile/out.x", "not a folder"),
            ("/proc/out.x", ""),
        ):
            assert_refused(
                [command, "--study", "smoke", "--storage", url, "-o", target],
                tmp_path,
                fragment or "-o",
            )


def test_train_checks_its_output_paths_before_training(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    base = [
        "train",
        "--val-size",
        "100",
        "--blocks",
        "1",
        "--channels",
        "8",
        "--stem-channels",
        "8",
        "--dataset",
        "synthetic",
        "--epochs",
        "1",
    ]
    assert_refused([*base, "--save-model", "afile/m.pt"], tmp_path, "--save-model")
    assert_refused([*base, "--save-model", "/proc/m.pt"], tmp_path, "--save-model")
    assert_refused([*base, "--checkpoint", "afile/c.pt"], tmp_path, "--checkpoint")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint at all")
    assert_refused([*base, "--checkpoint", "corrupt.pt"], tmp_path, "not readable")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("architecture: {blocks: [1]\n", "not valid YAML"),
        ("architecture: {blocks: [1], channels: [8]}\nextra: 1\n", "unknown key 'extra'"),
        ("architecture: !!python/object/apply:os.system [echo hi]\n", "not valid YAML"),
        (
            "architecture: {blocks: [1], channels: [8]}\ntraining: {lr: fast}\n",
            "lr='fast' must be a number",
        ),
        ("architecture: {blocks: [1], channels: [8], widths: [8]}\n", "architecture.widths"),
    ],
)
def test_train_refuses_a_bad_exported_config(text: str, fragment: str, tmp_path: Path) -> None:
    (tmp_path / "best.yaml").write_text(text)
    assert_refused(["train", "--config", "best.yaml", "--dataset", "synthetic"], tmp_path, fragment)


# ---------------------------------------------------------------------------------------------
# Read commands never create a database or a study


READS = [
    ["best", "--study", "smoke"],
    ["export", "--study", "smoke", "-o", "x.yaml"],
    ["report", "--study", "smoke", "-o", "r.html"],
    ["retrain", "--study", "smoke", "--epochs", "1"],
    ["dashboard", "--study", "smoke", "--port", "1"],
]


@pytest.mark.parametrize("args", READS, ids=[r[0] for r in READS])
def test_reads_of_a_mistyped_sqlite_path_create_nothing(args: list[str], tmp_path: Path) -> None:
    assert_refused(
        [*args, "--storage", f"sqlite:///{tmp_path / 'stdy.db'}"], tmp_path, "no database file"
    )
    assert not (tmp_path / "stdy.db").exists()


@pytest.mark.parametrize("args", READS, ids=[r[0] for r in READS])
def test_reads_of_a_missing_study_create_nothing(args: list[str], tmp_path: Path) -> None:
    url = _made_study(tmp_path)
    other = _config(
        tmp_path, SMOKE.replace("description:", "name: other\ndescription:"), "other.yaml"
    )
    args = [other if a == "smoke" else a for a in args]
    assert_refused([*args, "--storage", url], tmp_path, "no study 'other'")


def test_a_worker_joining_by_name_a_study_that_is_not_there(tmp_path: Path) -> None:
    url = _made_study(tmp_path)
    assert_refused(
        ["worker", "--study", "nowhere", "--storage", url, "--dry-run", "0"], tmp_path, "nowhere"
    )


# ---------------------------------------------------------------------------------------------
# A study this tool did not make, or a config that does not match


@pytest.mark.parametrize("command", [["run", "--dry-run", "0"], ["worker", "--dry-run", "0"]])
def test_a_study_optuna_search_did_not_create_is_refused(
    command: list[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="smoke", storage=url, direction="minimize")
    line = assert_refused(
        [command[0], "--study", "smoke", "--storage", url, *command[1:]],
        tmp_path,
        "not created by optuna-search",
    )
    assert "'smoke'" in line


def test_reading_a_study_of_other_directions_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="smoke", storage=url, direction="minimize")
    assert_refused(["best", "--study", "smoke", "--storage", url], tmp_path, "directions")


def test_a_two_objective_config_on_a_one_objective_study(tmp_path: Path) -> None:
    url = _made_study(tmp_path)
    two = _config(
        tmp_path,
        SMOKE.replace("objectives: [val_accuracy]", "objectives: [val_accuracy, params]").replace(
            "pruner: {name: asha, min_epochs: 1, reduction_factor: 2}", "pruner: {name: none}"
        ),
        "smoke.yaml",
    )
    assert_refused(["best", "--study", two, "--storage", url], tmp_path, "directions")


# ---------------------------------------------------------------------------------------------
# Small


def test_no_gpu_is_said_plainly(tmp_path: Path) -> None:
    import torch

    if torch.cuda.device_count():
        pytest.skip("this machine has a GPU")
    line = assert_refused(
        ["run", "--study", "smoke", "--gpus", "0"], tmp_path, "has 0 GPU(s); no GPU 0"
    )
    assert "0..-1" not in line and "--workers" in line
