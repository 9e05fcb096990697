"""What trains a trial: the engine, or a dry run's stand-in with the same signature.

The objective is written against :class:`Trainer`, whose ``train`` has the engine's signature
(:func:`model.engine.train`). :class:`EngineTrainer` is the engine itself; :class:`DryTrainer`
sleeps instead of training and emits epoch records with a made-up score, writing a checkpoint
after every epoch and resuming from it like the engine. So sampling, verdicts, slots,
pruning, interruption, re-queueing and recording run the same code in a dry run as on a GPU,
and the tests of workers and crash recovery test what a GPU trial does. A dry run never
imports torch.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from model.recipe import TrainConfig
    >>> from model.spec import make_spec
    >>> spec = make_spec(blocks=[1], channels=[8], stem_channels=8)
    >>> path = Path(tempfile.mkdtemp()) / "run.dry.json"
    >>> result = DryTrainer(0).train(spec, None, TrainConfig(epochs=3), checkpoint=path,
    ...                              on_epoch_end=lambda r: r.epoch == 2)
    >>> [r.epoch for r in result.history], result.stopped_early
    ([1, 2], True)
    >>> [r.epoch for r in DryTrainer(0).checkpointed(path)]
    [1, 2]
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from model.accounting import count_params
from model.recipe import TrainConfig
from model.spec import ResNetSpec
from model.training import CheckpointMismatch, EpochRecord, TrainResult

if TYPE_CHECKING:
    from model.data import DataSplits

EpochCallback = Callable[[EpochRecord], "bool | None"]


class Trainer(Protocol):
    """Trains one configuration; the objective's only view of training."""

    dry_run: bool
    """Whether results are stand-ins (recorded on the trial, shown in the report)."""
    checkpoint_suffix: str
    """File suffix of this trainer's checkpoints (the two kinds never mix)."""

    def train(
        self,
        spec: ResNetSpec,
        data: DataSplits | None,
        config: TrainConfig,
        *,
        device: str = "cpu",
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> TrainResult:
        """:func:`model.engine.train`: returns the result; raises ``TrainingDiverged``,
        ``OutOfMemory``, ``CheckpointMismatch``, or what ``on_epoch_end`` raises."""
        ...

    def checkpointed(self, path: Path) -> list[EpochRecord]:
        """The epochs a checkpoint holds (empty when there is none): what a retried trial
        reports to the pruner before it continues."""
        ...

    def device_name(self, device: str) -> str:
        """The device as the trial records it (``NVIDIA H100 80GB HBM3``)."""
        ...

    def framework_version(self) -> str | None:
        """The torch version training ran with (None in a dry run)."""
        ...


class EngineTrainer:
    """The GPU-resident engine (torch is imported at the first call, not before)."""

    dry_run = False
    checkpoint_suffix = ".pt"

    def train(
        self,
        spec: ResNetSpec,
        data: DataSplits | None,
        config: TrainConfig,
        *,
        device: str = "cpu",
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> TrainResult:
        from model.engine import train

        assert data is not None, "the engine trains on data"
        return train(
            spec, data, config, device=device, checkpoint=checkpoint, on_epoch_end=on_epoch_end
        )

    def checkpointed(self, path: Path) -> list[EpochRecord]:
        from model.checkpoint import load_checkpoint

        state = load_checkpoint(path)
        return [] if state is None else [EpochRecord.from_dict(r) for r in state["history"]]

    def device_name(self, device: str) -> str:
        from model.engine import device_name, resolve_device

        return device_name(resolve_device(device))

    def framework_version(self) -> str | None:
        import torch

        return str(torch.__version__)


class DryTrainer:
    """Sleeps ``seconds`` a trial, spread over its epochs, instead of training.

    The score grows with size and depth, like accuracy, and is best near lr 0.1, so that
    samplers and pruners have something to learn. Signals interrupt the sleep as they would
    interrupt training.
    """

    dry_run = True
    checkpoint_suffix = ".dry.json"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @staticmethod
    def score(spec: ResNetSpec, config: TrainConfig) -> float:
        params = count_params(spec)
        depth = min(spec.depth, 30)
        lr_miss = abs(math.log(config.lr / 0.1))
        return 0.40 + 0.07 * math.log10(params) + 0.002 * depth - 0.02 * lr_miss

    def train(
        self,
        spec: ResNetSpec,
        data: DataSplits | None,
        config: TrainConfig,
        *,
        device: str = "cpu",
        checkpoint: str | os.PathLike[str] | None = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> TrainResult:
        started = time.perf_counter()
        identity = {"spec": spec.to_dict(), "recipe": config.to_dict()}
        history: list[EpochRecord] = []
        if checkpoint is not None and Path(checkpoint).exists():
            state = json.loads(Path(checkpoint).read_text())
            if state["identity"] != identity:
                raise CheckpointMismatch(f"checkpoint {checkpoint} belongs to another run")
            history = [EpochRecord.from_dict(r) for r in state["history"]]
        resumed_from = len(history)
        final = self.score(spec, config)
        seconds = self.seconds / config.epochs
        stopped_early = False
        for epoch in range(resumed_from + 1, config.epochs + 1):
            time.sleep(seconds)
            record = EpochRecord(
                epoch=epoch,
                train_loss=2.3 * 0.7**epoch,
                val_accuracy=final * (1 - 0.5**epoch),
                lr=config.lr,
                seconds=seconds,
                images_per_second=0.0,
                eval_seconds=0.0,
            )
            history.append(record)
            if checkpoint is not None:
                _write_json(Path(checkpoint), {"identity": identity, "history": history})
            if on_epoch_end is not None and on_epoch_end(record):
                stopped_early = epoch < config.epochs
                break
        return TrainResult(
            spec=spec,
            config=config,
            history=history,
            params=count_params(spec),
            device=self.device_name(device),
            seconds=time.perf_counter() - started,
            stopped_early=stopped_early,
            resumed_from_epoch=resumed_from,
        )

    def checkpointed(self, path: Path) -> list[EpochRecord]:
        if not path.exists():
            return []
        return [EpochRecord.from_dict(r) for r in json.loads(path.read_text())["history"]]

    def device_name(self, device: str) -> str:
        return f"dry run ({device})"

    def framework_version(self) -> str | None:
        return None


def _write_json(path: Path, state: dict[str, object]) -> None:
    """Atomically, as the engine writes its checkpoints: a killed process leaves the last."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(state, default=lambda o: asdict(o) if isinstance(o, EpochRecord) else str(o))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(body)
    os.replace(tmp, path)
