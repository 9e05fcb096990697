"""Training recipes: the hyperparameters of one run, validated, and the learning-rate schedule.

Plain Python (no torch), so that study configs are validated without importing torch.

Example:
    >>> config = TrainConfig(epochs=10, lr=0.2, schedule="cosine", warmup_epochs=1)
    >>> round(lr_at(0, config=config, steps_per_epoch=100), 3)
    0.002
"""

from __future__ import annotations

import math
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, get_type_hints

SCHEDULES = ("cosine", "linear", "paper")
"""Learning-rate schedules: ``cosine`` and ``linear`` decay to zero per iteration after a
linear warm-up; ``paper`` is CosineAnnealingLR(T_max=epochs) stepped once per epoch."""


def _recipe_field(
    default: Any, help: str, *, searchable: bool = True, result_free: bool = False
) -> Any:
    """A recipe field with what the rest of the project derives from it.

    ``help`` is the ``train`` flag's help text; ``searchable`` fields may be fixed or searched
    by a study config (``space.training``); ``result_free`` fields do not change the numbers a
    run produces (a checkpoint resumes across them, and they are no part of a trial's
    identity).
    """
    return field(
        default=default,
        metadata={"help": help, "searchable": searchable, "result_free": result_free},
    )


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """A training recipe. The defaults are the paper's recipe for its 95.95% run."""

    epochs: int = _recipe_field(200, "epochs to train")
    batch_size: int = _recipe_field(128, "images per step")
    lr: float = _recipe_field(0.1, "peak learning rate")
    momentum: float = _recipe_field(0.9, "SGD momentum")
    nesterov: bool = _recipe_field(False, "Nesterov momentum")
    weight_decay: float = _recipe_field(5e-4, "L2 weight decay")
    schedule: str = _recipe_field(
        "paper", "paper: cosine stepped per epoch; cosine, linear: per step after warm-up"
    )
    warmup_epochs: float = _recipe_field(0.0, "linear warm-up, in epochs")
    label_smoothing: float = _recipe_field(0.0, "label smoothing of the loss")
    ema_decay: float = _recipe_field(0.0, "weight EMA, e.g. 0.999 (0: off)")
    """Exponential moving average of the weights (0: off); evaluation then uses the average."""
    crop_padding: int = _recipe_field(4, "random-crop padding")
    flip: bool = _recipe_field(True, "random horizontal flips")
    cutout: int = _recipe_field(0, "cutout square size (0: off)")
    tta: bool = _recipe_field(False, "flip at evaluation")
    """Evaluate on each image and its mirror image, averaging the logits."""
    seed: int = _recipe_field(0, "random seed", searchable=False)
    compile: bool = _recipe_field(
        False, "torch.compile the model (CUDA)", searchable=False, result_free=True
    )
    """torch.compile the model (CUDA only: a first epoch of compilation buys faster steps)."""
    eval_batch_size: int = _recipe_field(
        1000, "images per evaluation batch", searchable=False, result_free=True
    )

    def __post_init__(self) -> None:
        for name, kind in FIELD_TYPES.items():
            value = getattr(self, name)
            accepted = (int, float) if kind is float else (kind,)
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, accepted):
                raise ValueError(f"training recipe: {name}={value!r} must be {_KIND_NAMES[kind]}")
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


RECIPE_FIELDS: tuple[Field[Any], ...] = fields(TrainConfig)

_HINTS = get_type_hints(TrainConfig)
FIELD_TYPES: dict[str, type] = {f.name: _HINTS[f.name] for f in RECIPE_FIELDS}
"""The type of each recipe field (``int``, ``float``, ``bool`` or ``str``)."""

_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}

SEARCHABLE = tuple(f.name for f in RECIPE_FIELDS if f.metadata["searchable"])
"""The fields a study may search or fix (``space.training``)."""

RESUME_FREE = frozenset(f.name for f in RECIPE_FIELDS if f.metadata["result_free"])
"""Fields that do not change the numbers a run produces: a checkpoint resumes across them."""


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
