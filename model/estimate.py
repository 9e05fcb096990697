"""What a training run will cost before it starts: time per epoch and device memory.

Time comes from the MAC count and this machine's training speed, measured once in a fraction
of a second on a small reference network. Memory comes from the spec: weights, gradients and
optimizer state, plus the activations autograd keeps for one batch.

Example:
    >>> from model.architectures import architecture
    >>> training_memory_bytes(architecture("ResNet26-B453"), batch_size=512) // 2**30
    2
"""

from __future__ import annotations

import time

import torch

from model.accounting import count_params
from model.spec import INPUT_SIZE, ResNetSpec


def measure_training_rate(device: str | torch.device = "cpu", *, seconds: float = 0.5) -> float:
    """Forward MACs per second this device sustains while training (forward + backward).

    Measured on a small reference network in fp32 (bf16 on CUDA), after one warm-up step.
    """
    from model.accounting import count_macs
    from model.network import build_model
    from model.spec import make_spec

    dev = torch.device(device)
    spec = make_spec(blocks=[1, 1], channels=[32, 64], stem_channels=32)
    net = build_model(spec).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(32, 3, INPUT_SIZE, INPUT_SIZE, device=dev)
    y = torch.randint(0, 10, (32,), device=dev)
    steps, elapsed = 0, 0.0
    while steps < 2 or elapsed < seconds:
        if steps == 1:  # the first step pays for allocation and autotuning
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if steps > 1:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            elapsed = time.perf_counter() - t0
    return count_macs(spec) * x.shape[0] * (steps - 1) / elapsed


def epoch_seconds(*, macs: int, images: int, rate: float) -> float:
    """Expected seconds for one training epoch of ``images`` at ``rate`` (MACs per second)."""
    return macs * images / rate


def training_memory_bytes(
    spec: ResNetSpec, *, batch_size: int, activation_bytes: int = 2, state_bytes: int = 4
) -> int:
    """Upper estimate of the device memory a training step needs.

    Weights, gradients and SGD momentum in fp32 (``state_bytes``), plus for each conv the
    input autograd saves, the batch-norm input and the ReLU output at ``activation_bytes``
    each (bf16 on CUDA). The data set is :func:`data_memory_bytes`.
    """
    params = count_params(spec)
    per_image = 3 * INPUT_SIZE * INPUT_SIZE  # the normalised input batch
    side = INPUT_SIZE
    per_image += 3 * spec.stem_channels * side * side
    for c, b, s in zip(spec.channels, spec.blocks, spec.strides, strict=True):
        side = -(-side // s)
        # Each block: two convs, each saving its input, the BN input and the ReLU output;
        # the first block's shortcut conv saves its own BN input too.
        per_image += b * 2 * 3 * c * side * side + c * side * side
    return 3 * params * state_bytes + per_image * batch_size * activation_bytes


def data_memory_bytes(*, train_images: int, val_images: int, input_bytes: int = 2) -> int:
    """Device memory of the data: the uint8 training and validation images, plus the epoch
    of augmented, normalised training inputs the engine prepares (``input_bytes`` a value:
    bf16 on CUDA).

    Example:
        >>> round(data_memory_bytes(train_images=45_000, val_images=5_000) / 2**20)
        410
    """
    pixels = 3 * INPUT_SIZE * INPUT_SIZE
    return (train_images + val_images) * pixels + train_images * pixels * input_bytes
