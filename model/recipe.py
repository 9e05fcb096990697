"""Training recipes: the hyperparameters of one run, validated, and the learning-rate schedule.

Plain Python (no torch), so that study configs are validated without importing torch.

Example:
    >>> config = TrainConfig(epochs=10, lr=0.2, schedule="cosine", warmup_epochs=1)
    >>> round(lr_at(0, config=config, steps_per_epoch=100), 3)
    0.002
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

SCHEDULES = ("cosine", "linear", "paper")
"""Learning-rate schedules: ``cosine`` and ``linear`` decay to zero per iteration after a
linear warm-up; ``paper`` is CosineAnnealingLR(T_max=epochs) stepped once per epoch."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """A training recipe. The defaults are the paper's recipe for its 95.95% run."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "paper"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    ema_decay: float = 0.0
    """Exponential moving average of the weights (0: off); evaluation then uses the average."""
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0
    tta: bool = False
    """Evaluate on each image and its mirror image, averaging the logits."""
    seed: int = 0
    compile: bool = False
    """torch.compile the model (CUDA only: a first epoch of compilation buys faster steps)."""
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, "at least 1"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("lr", self.lr > 0 and math.isfinite(self.lr), "a positive number"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("nesterov", not self.nesterov or self.momentum > 0, "used with momentum > 0"),
            ("weight_decay", self.weight_decay >= 0, "at least 0"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("warmup_epochs", 0 <= self.warmup_epochs <= self.epochs, "in [0, epochs]"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("ema_decay", 0 <= self.ema_decay < 1, "in [0, 1)"),
            ("crop_padding", self.crop_padding >= 0, "at least 0"),
            ("cutout", self.cutout >= 0, "at least 0"),
            ("eval_batch_size", self.eval_batch_size >= 1, "at least 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(
                    f"training recipe: {name}={getattr(self, name)!r} must be {expected}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# Recipe fields that do not change the numbers a run produces: a checkpoint resumes across them.
RESUME_FREE = frozenset({"compile", "eval_batch_size"})


def lr_at(step: int, *, config: TrainConfig, steps_per_epoch: int) -> float:
    """Learning rate of iteration ``step`` (0-based): a pure function of the step, so resuming
    needs no scheduler state."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "paper":
        return config.lr * 0.5 * (1 + math.cos(math.pi * (step // steps_per_epoch) / config.epochs))
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if config.schedule == "linear":
        return config.lr * (1 - progress)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
