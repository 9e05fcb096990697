"""The trainers: the engine and the dry run's stand-in, with one interface."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from model.recipe import TrainConfig
from model.spec import make_spec
from model.training import CheckpointMismatch
from search.trainer import DryTrainer, EngineTrainer, Trainer

SPEC = make_spec(blocks=[1], channels=[8], stem_channels=8, pool="global")


def test_both_are_trainers() -> None:
    trainers: list[Trainer] = [EngineTrainer(), DryTrainer(0)]
    assert [t.dry_run for t in trainers] == [False, True]
    assert len({t.checkpoint_suffix for t in trainers}) == 2  # their checkpoints never mix


def test_dry_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "k.dry.json"
    config = TrainConfig(epochs=4, lr=0.1)
    seen: list[int] = []

    def stop_after_two(record: object) -> bool:
        seen.append(record.epoch)  # type: ignore[attr-defined]
        if len(seen) == 2:
            raise KeyboardInterrupt  # a signal, as the worker's handler raises it
        return False

    with pytest.raises(KeyboardInterrupt):
        DryTrainer(0).train(SPEC, None, config, checkpoint=path, on_epoch_end=stop_after_two)
    assert [r.epoch for r in DryTrainer(0).checkpointed(path)] == [1, 2]
    result = DryTrainer(0).train(SPEC, None, config, checkpoint=path)
    assert result.resumed_from_epoch == 2 and [r.epoch for r in result.history] == [1, 2, 3, 4]
    uninterrupted = DryTrainer(0).train(SPEC, None, config)
    assert result.val_accuracy == uninterrupted.val_accuracy  # ends where it would have
    with pytest.raises(CheckpointMismatch):
        DryTrainer(0).train(SPEC, None, TrainConfig(epochs=4, lr=0.2), checkpoint=path)


def test_dry_score_prefers_size_and_the_right_lr() -> None:
    big = make_spec(blocks=[2, 2], channels=[32, 64], stem_channels=8, pool="global")
    assert DryTrainer.score(big, TrainConfig()) > DryTrainer.score(SPEC, TrainConfig())
    assert DryTrainer.score(SPEC, TrainConfig(lr=0.1)) > DryTrainer.score(SPEC, TrainConfig(lr=1))


def test_dry_run_imports_no_torch() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from model.recipe import TrainConfig\n"
        "from model.spec import make_spec\n"
        "from search.trainer import DryTrainer\n"
        "spec = make_spec(blocks=[1], channels=[8])\n"
        "DryTrainer(0).train(spec, None, TrainConfig(epochs=2))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_engine_checkpoint_history(tmp_path: Path) -> None:
    from model.data import load_data

    data = load_data(dataset="synthetic", val_size=100, synthetic_size=(300, 100))
    path = tmp_path / "k.pt"
    trainer = EngineTrainer()
    assert trainer.checkpointed(path) == []
    result = trainer.train(SPEC, data, TrainConfig(epochs=2, batch_size=100), checkpoint=path)
    assert trainer.checkpointed(path) == result.history
    assert trainer.framework_version() and trainer.device_name("cpu").startswith("cpu")
