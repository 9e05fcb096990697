"""The cost estimates hold against what PyTorch really keeps and what the engine allocates."""

from __future__ import annotations

import pytest
import torch

from model.accounting import count_params
from model.augment import Normalizer, augment_epoch
from model.estimate import (
    data_memory_bytes,
    epoch_seconds,
    measure_training_rate,
    training_memory_bytes,
)
from model.network import build_model
from model.spec import make_spec


def _saved_activation_bytes(net: torch.nn.Module, batch: int) -> int:
    """Bytes autograd keeps for the backward pass of one batch (each storage once)."""
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(torch.randn(batch, 3, 32, 32)).sum()
    return sum(saved.values())


@pytest.mark.parametrize(
    "spec",
    [
        make_spec(blocks=[1, 1], channels=[8, 16]),
        make_spec(blocks=[2, 1, 1], channels=[8, 16, 32], strides=[1, 2, 2], kernels=[3, 5, 3]),
        make_spec(blocks=[4, 5, 3], channels=[4, 8, 16], strides=[1, 2, 4], stem_channels=4),
    ],
    ids=lambda s: s.name,
)
def test_memory_estimate_covers_what_autograd_keeps_without_gross_excess(spec) -> None:
    state = 3 * count_params(spec) * 4  # fp32 weights, gradients, momentum
    estimate = training_memory_bytes(spec, batch_size=16, activation_bytes=4) - state
    kept = _saved_activation_bytes(build_model(spec), 16)
    assert kept <= estimate <= 2 * kept


def test_data_estimate_is_what_the_engine_puts_on_the_device() -> None:
    train = torch.zeros(300, 3, 32, 32, dtype=torch.uint8)
    val = torch.zeros(100, 3, 32, 32, dtype=torch.uint8)
    norm = Normalizer((0.5,) * 3, (0.25,) * 3, dtype=torch.bfloat16)
    epoch, _ = augment_epoch(
        train,
        torch.zeros(300, dtype=torch.long),
        order=torch.arange(300),
        normalizer=norm,
        generator=torch.Generator().manual_seed(0),
    )
    allocated = train.nbytes + val.nbytes + epoch.nbytes
    assert data_memory_bytes(train_images=300, val_images=100) == allocated


def test_epoch_time_scales_with_the_macs_at_the_measured_rate() -> None:
    rate = measure_training_rate("cpu", seconds=0.2)
    assert rate > 0
    assert epoch_seconds(macs=4_000, images=10, rate=rate) == pytest.approx(
        4 * epoch_seconds(macs=1_000, images=10, rate=rate)
    )
