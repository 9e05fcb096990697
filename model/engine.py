"""The training engine: one architecture, one recipe, the whole data set on the device.

Every trial of a search is one call of :func:`train`, so its speed is the cost of the search.
Following airbench, the uint8 data set is moved to the device once; each epoch shuffles and
augments it there at the epoch's start (crop, flip, cutout, normalisation), with no
DataLoader, no PIL and no per-sample Python, and a step slices its batch out of that. On
CUDA it trains in bf16 autocast with channels_last, cuDNN autotuning and a fused optimizer,
and synchronises with the host only where a figure is read (loss checks every
``sync_every`` steps, the end of each epoch). The same code runs on the CPU in fp32, which is
how the tests exercise it.

Example:
    >>> from model.data import load_data
    >>> from model.spec import make_spec
    >>> data = load_data(dataset="synthetic", val_size=200, synthetic_size=(600, 200))
    >>> spec = make_spec(blocks=[1], channels=[8], stem_channels=8)
    >>> result = train(spec, data, TrainConfig(epochs=1, batch_size=100))
    >>> len(result.history)
    1
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from model.accounting import count_params
from model.augment import Normalizer, augment_epoch
from model.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from model.data import CIFAR10_MEAN, CIFAR10_STD, DataSplits, Split
from model.network import build_model
from model.recipe import RESUME_FREE, TrainConfig, lr_at
from model.spec import ResNetSpec
from model.training import (
    CheckpointMismatch,
    DeviceError,
    EpochRecord,
    OutOfMemory,
    TrainingDiverged,
    TrainingError,
    TrainResult,
)

__all__ = [
    "CheckpointMismatch",
    "DeviceError",
    "EpochRecord",
    "OutOfMemory",
    "TrainResult",
    "TrainingDiverged",
    "TrainingError",
    "device_name",
    "evaluate",
    "resolve_device",
    "train",
]


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``, checked against this machine."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DeviceError(f"unsupported device {name!r}; use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} asked for, but CUDA is not available here; use cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceError(f"device {name!r} asked for, but this machine has {count} GPU(s)")
    return device


def device_name(device: torch.device) -> str:
    """A readable name for reports, e.g. ``NVIDIA H100 80GB HBM3`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    *,
    normalizer: Normalizer,
    batch_size: int = 1000,
    tta: bool = False,
) -> float:
    """Top-1 accuracy of ``model`` on ``split`` (already on the model's device)."""
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split")
    was_training = model.training
    model.eval()
    device = split.images.device
    correct = torch.zeros((), dtype=torch.int64, device=device)
    with _autocast(device):
        for i in range(0, len(split), batch_size):
            x = normalizer(split.images[i : i + batch_size])
            logits = model(x)
            if tta:
                logits = logits + model(x.flip(3))
            correct += (logits.argmax(1) == split.labels[i : i + batch_size]).sum()
    model.train(was_training)
    return correct.item() / len(split)


def _autocast(device: torch.device) -> torch.autocast:
    # bf16 needs no loss scaling; on the CPU the engine stays in fp32.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


class _Timer:
    """Wall time of a stretch of device work: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> float:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return self._start.elapsed_time(end) / 1000.0
        return time.perf_counter() - self._t0


def train(
    spec: ResNetSpec,
    data: DataSplits,
    config: TrainConfig,
    *,
    device: str | torch.device = "cpu",
    checkpoint: str | os.PathLike[str] | None = None,
    on_epoch_end: Callable[[EpochRecord], bool | None] | None = None,
    evaluate_test: bool = False,
    sync_every: int = 50,
) -> TrainResult:
    """Train ``spec`` on ``data`` with ``config``; evaluate on the validation split each epoch.

    Args:
        checkpoint: a file written at the end of every epoch; if it exists when the run starts,
            the run continues from it and ends where an uninterrupted run would.
        on_epoch_end: called after each epoch's checkpoint with its record; returning True
            stops the run (``stopped_early``), and an exception it raises propagates.
        evaluate_test: evaluate the test split once, at the end.
        sync_every: steps between checks of the loss for NaN/inf on a GPU (each check is a
            host synchronisation); on the CPU every step is checked.

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
        OutOfMemory: CUDA ran out of memory; the memory is released before raising.
        CheckpointMismatch: ``checkpoint`` belongs to another architecture or recipe.
    """
    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    try:
        return _train(spec, data, config, dev, checkpoint, on_epoch_end, evaluate_test, sync_every)
    except torch.OutOfMemoryError as e:
        detail = str(e)
    # Outside the except block the failed frames (model, optimizer, batches) are gone.
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    raise OutOfMemory(batch_size=config.batch_size, device=str(dev), detail=detail)


def _identity(spec: ResNetSpec, config: TrainConfig, data: DataSplits) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: architecture, recipe and the data split.

    The split is identified by its sizes and a position-weighted label checksum rather than
    by paths, so a retried trial on another host (other mount points) can resume it.
    """
    recipe = {k: v for k, v in config.to_dict().items() if k not in RESUME_FREE}
    split = [
        [len(s), int((s.labels * torch.arange(1, len(s) + 1)).sum())]
        for s in (data.train, data.val)
    ]
    return {"spec": spec.to_dict(), "recipe": recipe, "split": split}


def _train(
    spec: ResNetSpec,
    data: DataSplits,
    config: TrainConfig,
    device: torch.device,
    checkpoint: str | os.PathLike[str] | None,
    on_epoch_end: Callable[[EpochRecord], bool | None] | None,
    evaluate_test: bool,
    sync_every: int,
) -> TrainResult:
    t_run = time.perf_counter()
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(config.seed)
    net = build_model(spec)
    params = count_params(spec)
    memory_format = torch.channels_last if cuda else torch.contiguous_format
    # Module.to(device, memory_format=...) works at runtime; no overload in torch's stubs has both.
    net = net.to(device, memory_format=memory_format)  # type: ignore[call-overload]
    generator = torch.Generator(device=device).manual_seed(config.seed)
    optimizer = torch.optim.SGD(
        net.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
        fused=True if cuda else None,
    )
    ema = (
        torch.optim.swa_utils.AveragedModel(
            net,
            multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay),
            use_buffers=True,
        )
        if config.ema_decay > 0
        else None
    )
    history: list[EpochRecord] = []
    identity = _identity(spec, config, data)
    resumed_from = 0
    if checkpoint is not None and (state := load_checkpoint(checkpoint)) is not None:
        if state["identity"] != identity:
            raise CheckpointMismatch(
                f"checkpoint {checkpoint} belongs to another run (architecture, recipe or data "
                "differ); remove it or give another --checkpoint path"
            )
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        restore_rng(state["rng"], generator)
        history = [EpochRecord.from_dict(r) for r in state["history"]]
        resumed_from = len(history)

    train_x = data.train.images.to(device, non_blocking=True)
    train_y = data.train.labels.to(device, non_blocking=True)
    val = data.val.to(device)
    normalizer = Normalizer(
        CIFAR10_MEAN,
        CIFAR10_STD,
        device=device,
        dtype=torch.bfloat16 if cuda else torch.float32,
        channels_last=cuda,
    )
    n = len(train_x)
    batch = min(config.batch_size, n)
    steps_per_epoch = n // batch  # drop the last partial batch: fixed shapes for cuDNN/compile
    step_model: nn.Module = net
    if config.compile and cuda:
        # The stubs type torch.compile as returning a bare callable; on a module it returns
        # an OptimizedModule, which evaluate() needs for train()/eval().
        compiled = torch.compile(net)
        assert isinstance(compiled, nn.Module)
        step_model = compiled
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    timer = _Timer(device)
    stopped_early = False

    net.train()
    for epoch in range(resumed_from, config.epochs):
        timer.start()
        loss_sum = torch.zeros((), device=device)
        order = torch.randperm(n, generator=generator, device=device)
        epoch_x, epoch_y = augment_epoch(
            train_x,
            train_y,
            order=order[: steps_per_epoch * batch],
            normalizer=normalizer,
            generator=generator,
            crop_padding=config.crop_padding,
            flip=config.flip,
            cutout_size=config.cutout,
        )
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            lr = lr_at(step, config=config, steps_per_epoch=steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            rows = slice(i * batch, (i + 1) * batch)  # views: a step launches no data kernels
            with _autocast(device):
                loss = criterion(step_model(epoch_x[rows]), epoch_y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(net)
            loss_sum += loss.detach().float()
            if (not cuda or (i + 1) % sync_every == 0) and not torch.isfinite(loss_sum):
                raise TrainingDiverged(epoch=epoch + 1, step=step + 1, loss=loss.item())
        seconds = timer.stop()
        del epoch_x, epoch_y  # free before evaluation and the next epoch's buffer
        train_loss = loss_sum.item() / steps_per_epoch
        if not math.isfinite(train_loss):
            raise TrainingDiverged(epoch=epoch + 1, step=step + 1, loss=train_loss)

        t_eval = time.perf_counter()
        eval_net = ema.module if ema is not None else step_model
        val_accuracy = (
            evaluate(
                eval_net,
                val,
                normalizer=normalizer,
                batch_size=config.eval_batch_size,
                tta=config.tta,
            )
            if len(val)
            else None
        )
        net.train()
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=train_loss,
            val_accuracy=val_accuracy,
            lr=lr,
            seconds=seconds,
            images_per_second=steps_per_epoch * batch / seconds,
            eval_seconds=time.perf_counter() - t_eval,
        )
        history.append(record)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "identity": identity,
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "rng": capture_rng(generator),
                    "history": [asdict(r) for r in history],
                },
            )
        if on_epoch_end is not None and on_epoch_end(record):
            stopped_early = epoch + 1 < config.epochs
            break

    final = ema.module if ema is not None else net
    test_accuracy = None
    if evaluate_test:
        test_accuracy = evaluate(
            final,
            data.test.to(device),
            normalizer=normalizer,
            batch_size=config.eval_batch_size,
            tta=config.tta,
        )
    return TrainResult(
        spec=spec,
        config=config,
        history=history,
        params=params,
        device=device_name(device),
        seconds=time.perf_counter() - t_run,
        test_accuracy=test_accuracy,
        stopped_early=stopped_early,
        resumed_from_epoch=resumed_from,
        model=final.to("cpu"),
    )
