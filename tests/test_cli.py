"""The command line: params output, one-line errors, and no torch on the instant paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse exits for its own errors and --help
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_params_json_of_a_named_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["params", "--arch", "ResNet26-B453", "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert data["name"] == "ResNet26-B453"
    assert data["params"] == 4_992_586
    assert data["within_budget"] is True
    assert data["macs"] == sum(p["macs"] for p in data["parts"])


def test_params_from_family_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["params", "--blocks", "4,5,3", "--channels", "64,128,256", "--strides", "1,2,4", "--json"],
        capsys,
    )
    assert code == 0 and json.loads(out)["name"] == "ResNet26-B453"
    code, out, _ = _run(
        [
            "params",
            "--blocks",
            "1,1",
            "--channels",
            "8,16",
            "--kernel",
            "5,3",
            "--shortcut-kernel",
            "3",
            "--pool",
            "global",
            "--json",
        ],
        capsys,
    )
    data = json.loads(out)
    assert data["spec"]["kernels"] == [5, 3] and data["spec"]["shortcut_kernels"] == [3, 3]
    assert data["spec"]["strides"] == [1, 2] and data["spec"]["pool"] == "global"


def test_budget_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(["params", "--arch", "ResNet14", "--json"], capsys)
    assert json.loads(out)["within_budget"] is False
    _, out, _ = _run(["params", "--arch", "ResNet14", "--max-params", "6000000"], capsys)
    assert "within the 6,000,000 budget" in out
    _, out, _ = _run(["params", "--arch", "ResNet14"], capsys)
    assert "OVER the 5,000,000 budget by 51,210" in out


def test_paper_tables(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["params", "--paper"], capsys)
    assert code == 0
    assert "3,618,890" in out and "typo" in out and " NO " not in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["params", "--blocks", "4,x", "--channels", "8"], "not a comma-separated list"),
        (["params", "--blocks", "1", "--channels", "8", "--pool", "avg"], "not a pool size"),
        (["params", "--blocks", "1", "--channels", "8", "--kernel", "4"], "kernels[0]=4"),
        (["params", "--blocks", "1,1", "--channels", "8"], "channels=[8]"),
        (["params", "--arch", "ResNet99"], "unknown architecture 'ResNet99'"),
        (["params", "--arch", "ResNet10", "--blocks", "1"], "not both"),
        (["params"], "give --arch NAME"),
        (["params", "--arch", "ResNet10", "--max-params", "0"], "--max-params"),
        (["params", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and fragment in err


@pytest.mark.parametrize("argv", [["--help"], ["params", "--arch", "ResNet10", "--json"]])
def test_instant_commands_do_not_import_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom search.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'torchvision') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in proc.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "optuna-search"
    proc = subprocess.run(
        [str(script), "params", "--arch", "ResNet10", "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["params"] == 4_903_242


def test_train_json_on_synthetic_data(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    saved = tmp_path / "model.pt"
    argv = [
        sys.executable,
        "-m",
        "search.cli",
        "train",
        "--blocks",
        "1",
        "--channels",
        "8",
        "--stem-channels",
        "8",
        "--pool",
        "global",
        "--dataset",
        "synthetic",
        "--val-size",
        "200",
        "--epochs",
        "2",
        "--batch-size",
        "100",
        "--lr",
        "0.05",
        "--schedule",
        "cosine",
        "--device",
        "cpu",
        "--checkpoint",
        str(ckpt),
        "--save-model",
        str(saved),
        "--json",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["epochs"] == 2 and data["params"] > 0
    assert 0 <= data["val_accuracy"] <= 1 and 0 <= data["test_accuracy"] <= 1
    assert data["images_per_second"] > 0 and data["seconds"] > 0
    assert "epoch 2/2" in proc.stderr  # one progress line per epoch when not on a terminal
    assert ckpt.exists() and saved.exists()
    # Rerunning with the same checkpoint resumes at the end: nothing left to train.
    again = json.loads(subprocess.run(argv, capture_output=True, text=True).stdout)
    assert again["resumed_from_epoch"] == 2 and again["val_accuracy"] == data["val_accuracy"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--data-dir", "/nonexistent/cifar"], "/nonexistent/cifar"),
        (["--dataset", "imagenet"], "imagenet"),
        (["--device", "tpu"], "unknown device"),
        (["--epochs", "0"], "epochs=0"),
        (["--schedule", "step"], "schedule='step'"),
    ],
)
def test_train_bad_input_exits_2_with_one_line(extra: list[str], fragment: str) -> None:
    argv = [
        sys.executable,
        "-m",
        "search.cli",
        "train",
        "--blocks",
        "1",
        "--channels",
        "8",
        "--epochs",
        "1",
        *extra,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and fragment in proc.stderr


def test_validate_judges_enqueued_trials_by_the_whole_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An enqueued architecture within the parameter budget but over ``max_macs`` is one the
    objective rejects: validate says so (it once called it "within budget")."""
    from search.config import PROJECT_CONFIGS

    text = (PROJECT_CONFIGS / "smoke.yaml").read_text()
    config = tmp_path / "macs.yaml"
    config.write_text(text.replace("max_params: 30000", "max_params: 30000\n  max_macs: 2000000"))
    code, out, err = _run(["validate", "--study", str(config)], capsys)
    assert code == 0, err
    line = next(x for x in out.splitlines() if "enqueued known-good tiny net" in x)
    assert "MACs > 2,000,000" in line and "will be rejected" in line
    assert "within budget" not in line
