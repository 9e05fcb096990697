"""The training engine on the CPU with tiny widths: learning, repeatability, resume, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.data import DataSplits, load_data
from model.engine import (
    CheckpointMismatch,
    DeviceError,
    EpochRecord,
    OutOfMemory,
    TrainingDiverged,
    resolve_device,
    train,
)
from model.recipe import TrainConfig
from model.spec import make_spec

TINY = make_spec(blocks=[1, 1], channels=[8, 16], stem_channels=8, pool="global")
FAST = TrainConfig(
    epochs=3, batch_size=64, lr=0.05, schedule="cosine", warmup_epochs=0.5, nesterov=True
)


@pytest.fixture(scope="module")
def data() -> DataSplits:
    return load_data(dataset="synthetic", val_size=200, synthetic_size=(1000, 200), seed=0)


def _same_weights(a: torch.nn.Module | None, b: torch.nn.Module | None) -> bool:
    assert a is not None and b is not None  # train() always returns its model
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_learns_the_synthetic_classes(data: DataSplits) -> None:
    result = train(TINY, data, FAST, evaluate_test=True)
    assert [r.epoch for r in result.history] == [1, 2, 3]
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.val_accuracy is not None and result.val_accuracy > 0.5  # chance is 0.1
    assert result.test_accuracy is not None and result.test_accuracy > 0.5
    assert all(r.seconds > 0 and r.images_per_second > 0 for r in result.history)
    assert result.model is not None
    assert result.params == sum(p.numel() for p in result.model.parameters())


def test_same_seed_same_run(data: DataSplits) -> None:
    a = train(TINY, data, FAST)
    b = train(TINY, data, FAST)
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert _same_weights(a.model, b.model)
    c = train(TINY, data, TrainConfig(**{**FAST.to_dict(), "seed": 1}))
    assert not _same_weights(a.model, c.model)


class _Interrupt(Exception):
    pass


def test_resume_after_interruption_ends_where_an_uninterrupted_run_does(
    data: DataSplits, tmp_path: Path
) -> None:
    config = TrainConfig(**{**FAST.to_dict(), "ema_decay": 0.9, "cutout": 8})
    whole = train(TINY, data, config)

    def interrupt(record: EpochRecord) -> None:
        if record.epoch == 2:
            raise _Interrupt

    ckpt = tmp_path / "run.pt"
    with pytest.raises(_Interrupt):
        train(TINY, data, config, checkpoint=ckpt, on_epoch_end=interrupt)
    assert ckpt.exists()
    resumed = train(TINY, data, config, checkpoint=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert [r.epoch for r in resumed.history] == [1, 2, 3]
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in whole.history]
    assert [r.val_accuracy for r in resumed.history] == [r.val_accuracy for r in whole.history]
    assert _same_weights(resumed.model, whole.model)


def test_checkpoint_of_another_run_is_refused(data: DataSplits, tmp_path: Path) -> None:
    ckpt = tmp_path / "run.pt"
    train(TINY, data, TrainConfig(**{**FAST.to_dict(), "epochs": 1}), checkpoint=ckpt)
    with pytest.raises(CheckpointMismatch, match="belongs to another run"):
        train(
            TINY, data, TrainConfig(**{**FAST.to_dict(), "epochs": 1, "lr": 0.01}), checkpoint=ckpt
        )


def test_callback_can_stop_the_run(data: DataSplits) -> None:
    seen: list[int] = []

    def stop_after_one(record: EpochRecord) -> bool:
        seen.append(record.epoch)
        return True

    result = train(TINY, data, FAST, on_epoch_end=stop_after_one)
    assert seen == [1] and result.epochs == 1 and result.stopped_early


def test_divergence_stops_at_once_and_the_process_goes_on(data: DataSplits) -> None:
    wild = TrainConfig(epochs=2, batch_size=64, lr=1e12, schedule="cosine")
    with pytest.raises(TrainingDiverged) as info:
        train(TINY, data, wild)
    assert info.value.epoch == 1
    assert "diverged" in str(info.value)
    assert train(TINY, data, TrainConfig(**{**FAST.to_dict(), "epochs": 1})).epochs == 1


def test_out_of_memory_carries_the_batch_size(
    data: DataSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    import model.network

    def exhausted(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with monkeypatch.context() as m:
        m.setattr(model.network.ResNet, "forward", exhausted)
        with pytest.raises(OutOfMemory) as info:
            train(TINY, data, FAST)
    assert info.value.batch_size == 64
    assert "batch size 64" in str(info.value) and "\n" not in str(info.value)
    assert train(TINY, data, TrainConfig(**{**FAST.to_dict(), "epochs": 1})).epochs == 1


def test_options_run_label_smoothing_ema_tta_paper_schedule(data: DataSplits) -> None:
    config = TrainConfig(
        epochs=2,
        batch_size=100,
        lr=0.05,
        schedule="paper",
        label_smoothing=0.1,
        ema_decay=0.9,
        tta=True,
        cutout=4,
    )
    result = train(TINY, data, config)
    assert result.epochs == 2 and result.val_accuracy is not None


def test_no_validation_split() -> None:
    data = load_data(dataset="synthetic", val_size=0, synthetic_size=(300, 100))
    result = train(TINY, data, TrainConfig(epochs=1, batch_size=100), evaluate_test=True)
    assert result.val_accuracy is None and result.test_accuracy is not None


def test_devices() -> None:
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")
