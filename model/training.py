"""What a training run reports and how it fails, without torch.

The engine (``model.engine``) produces these; the search reads them, and its dry run (a fake
trainer that sleeps instead of training) produces them too, so neither the search nor a dry
run has to import torch to handle a run's records, results or errors.

Example:
    >>> r = EpochRecord(epoch=1, train_loss=2.0, val_accuracy=0.4, lr=0.1, seconds=2.0,
    ...                 images_per_second=100.0, eval_seconds=0.1)
    >>> TrainResult(spec=None, config=None, history=[r], params=1, device="cpu",
    ...             seconds=2.5).val_accuracy
    0.4
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from model.recipe import TrainConfig
    from model.spec import ResNetSpec


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """The figures of one epoch, as the per-epoch callback and the history see them."""

    epoch: int
    """1-based."""
    train_loss: float
    val_accuracy: float | None
    """None when the run has no validation split."""
    lr: float
    """Learning rate at the end of the epoch."""
    seconds: float
    """Training time of the epoch (evaluation excluded), CUDA events on a GPU."""
    images_per_second: float
    eval_seconds: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        return cls(**data)


@dataclass
class TrainResult:
    spec: ResNetSpec
    config: TrainConfig
    history: list[EpochRecord]
    params: int
    device: str
    seconds: float
    """Wall time of the whole run in this process, evaluation included."""
    test_accuracy: float | None = None
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    model: nn.Module | None = field(default=None, repr=False)
    """The trained network (the EMA weights when ``ema_decay`` is on), on the CPU."""

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def val_accuracy(self) -> float | None:
        return self.history[-1].val_accuracy if self.history else None

    @property
    def train_seconds(self) -> float:
        return sum(r.seconds for r in self.history)

    @property
    def images_per_second(self) -> float:
        """Training images per second, leaving out the first epoch (autotuning) when possible."""
        steady = self.history[1:] or self.history
        seconds = sum(r.seconds for r in steady)
        return sum(r.images_per_second * r.seconds for r in steady) / seconds if seconds else 0.0


class TrainingError(RuntimeError):
    """A run that cannot go on; the process stays usable for the next run."""


class TrainingDiverged(TrainingError):
    def __init__(self, *, epoch: int, step: int, loss: float) -> None:
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(
            f"training diverged: loss {loss} at epoch {epoch}, step {step}; "
            "lower the learning rate or add warm-up"
        )


class OutOfMemory(TrainingError):
    def __init__(self, *, batch_size: int, device: str, detail: str) -> None:
        self.batch_size, self.device = batch_size, device
        first = detail.strip().splitlines()[0] if detail.strip() else ""
        super().__init__(
            f"out of memory on {device} with batch size {batch_size}; "
            f"use a smaller batch or a smaller model ({first})"
        )


class DeviceError(TrainingError):
    """The requested device does not exist on this machine."""


class CheckpointMismatch(TrainingError):
    """A checkpoint written by a different architecture or recipe."""
